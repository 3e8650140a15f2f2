package podidentity

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 15 item 4, as the probe did it: one pod (127.0.0.1) floods the agent with 200 concurrent
// requests, each with a new JWT-shaped token whose claims name the victim pod and whose exp lies in
// the future (EKS Auth refuses them: the signature is forged). Meanwhile another pod (127.0.0.2)
// asks every 250 ms for credentials with a new token of its own, and a third pod's cached
// credentials come due for their background refresh. Before the fix the flood drained the node's
// budget: the victim got 12/12 x 429 and the refresh was deferred as long as the flood lasted.
func TestFloodFromOnePodDoesNotStarveTheNode(t *testing.T) {
	clock := newFakeClock()
	up := newUpstream(t, clock.Now)
	up.lifetime.Store(int64(time.Hour))
	a := startAgent(t, up.client(t, 0), ServerOptions{Now: clock.Now, RefreshBefore: 15 * time.Minute, ServeSkew: time.Minute})
	victimClaims := podClaims("shop", "checkout", "checkout-7d9f8-abcde")

	cachedPod := clientFrom("127.0.0.3")
	cachedToken := makeToken(clock.Now().Add(24*time.Hour), podClaims("shop", "cart", "cart-5c6b7-fghij"))
	if code, err := fetchOnce(cachedPod, a.url, cachedToken); code != 200 {
		t.Fatalf("cached pod before the flood: %d %v", code, err)
	}

	attacker := clientFrom("127.0.0.1")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var flood, flood429 atomic.Int64
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				code, _ := fetchOnce(attacker, a.url, makeForgedToken(clock.Now().Add(time.Hour), victimClaims))
				flood.Add(1)
				if code == http.StatusTooManyRequests {
					flood429.Add(1)
				}
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	eventually(t, 10*time.Second, "the flood is being throttled", func() bool { return flood429.Load() >= 200 })

	// The cached pod's credentials come due for refresh (50 of 60 minutes) while the flood runs.
	clock.Advance(50 * time.Minute)
	a.poke()

	victim := clientFrom("127.0.0.2")
	served := 0
	var codes []int
	for range 12 {
		code, _ := fetchOnce(victim, a.url, makeToken(clock.Now().Add(time.Hour), victimClaims))
		codes = append(codes, code)
		if code == 200 {
			served++
		}
		time.Sleep(250 * time.Millisecond)
	}
	refreshed := metricValue(t, a.reg, "ekslink_pod_identity_upstream_calls_total", map[string]string{"kind": "refresh", "outcome": "success"})
	stop()
	wg.Wait()
	t.Logf("victim served %d/12 during the flood (codes %v); cached pod refreshed %v time(s); flood: %d requests, %d answered 429, %d upstream calls in all",
		served, codes, refreshed, flood.Load(), flood429.Load(), up.calls.Load())
	if served != 12 {
		t.Errorf("victim pod got credentials %d/12 times during another pod's flood", served)
	}
	if refreshed < 1 {
		t.Errorf("the cached pod's credentials were not refreshed during the flood")
	}
}

// The reserve: new tokens stop at ReservedBurst, while a token EKS Auth accepted before (a pod whose
// cached credentials ran out, e.g. during an outage) still gets through on the reserved part of the
// budget: the token stays known after its credentials stopped being servable.
func TestReserveServesKnownTokensWhenNewTokensCannot(t *testing.T) {
	clock := newFakeClock()
	up := newUpstream(t, clock.Now)
	up.lifetime.Store(int64(time.Hour))
	a := startAgent(t, up.client(t, 0), ServerOptions{
		Now: clock.Now, RefreshBefore: 20 * time.Minute, ServeSkew: time.Minute,
		Rate: 0.001, Burst: 6, ReservedBurst: 2, MissWait: 10 * time.Millisecond, SourceBurst: 1000,
	})
	known := makeToken(clock.Now().Add(24*time.Hour), nil)
	if ans := a.get(t, known); ans.status != 200 {
		t.Fatal(ans.raw)
	}
	for i := range 3 { // 5 -> 2: down to the reserve
		if ans := a.get(t, makeToken(clock.Now().Add(24*time.Hour), nil)); ans.status != 200 {
			t.Fatalf("new token %d above the reserve: %d %s", i, ans.status, ans.raw)
		}
	}
	if ans := a.get(t, makeToken(clock.Now().Add(24*time.Hour), nil)); ans.status != 429 || ans.body["code"] != CodeThrottled {
		t.Fatalf("a new token spent the reserve: %d %s", ans.status, ans.raw)
	}
	// The known token's credentials stop being servable without having been refreshed (as in an
	// outage); the scheduler looks at the entries and keeps the token known.
	clock.Advance(59*time.Minute + 30*time.Second)
	a.poke()
	eventually(t, 5*time.Second, "scheduler handled the expired entries", func() bool {
		a.cache.mu.Lock()
		defer a.cache.mu.Unlock()
		for _, e := range a.cache.entries {
			if e.heapIdx < 0 || !e.due.After(clock.Now()) {
				return false
			}
		}
		return true
	})
	if ans := a.get(t, known); ans.status != 200 {
		t.Fatalf("a token EKS Auth accepted before was refused: %d %s", ans.status, ans.raw)
	}
	if ans := a.get(t, makeToken(clock.Now().Add(24*time.Hour), nil)); ans.status != 429 {
		t.Fatalf("new token after the known one: %d %s", ans.status, ans.raw)
	}
}

// Refreshes with time to spare leave the budget to new pods (they spend only the upper half of the
// burst); a refresh whose credentials are about to stop being served (less than RefreshBefore/2
// left) spends the reserve, so cached credentials do not lapse while new tokens keep the budget low.
func TestUrgentRefreshSpendsTheReserve(t *testing.T) {
	clock := newFakeClock()
	up := newUpstream(t, clock.Now)
	up.lifetime.Store(int64(time.Hour))
	a := startAgent(t, up.client(t, 0), ServerOptions{
		Now: clock.Now, RefreshBefore: 20 * time.Minute, ServeSkew: time.Minute,
		Rate: 0.001, Burst: 6, ReservedBurst: 2, MissWait: 10 * time.Millisecond, SourceBurst: 1000,
	})
	urgent := makeToken(clock.Now().Add(24*time.Hour), nil) // credentials until T+60m
	first := a.get(t, urgent)
	clock.Advance(15 * time.Minute)
	spare := makeToken(clock.Now().Add(24*time.Hour), nil) // credentials until T+75m
	second := a.get(t, spare)
	for range 2 { // forged tokens spend the budget down to the reserve (6 -> 2)
		if ans := a.get(t, makeForgedToken(clock.Now().Add(time.Hour), nil)); ans.status != 400 {
			t.Fatalf("forged token: %d %s", ans.status, ans.raw)
		}
	}
	// T+56m: the first has 3m left to be served (urgent), the second 18m (due, not urgent).
	clock.Advance(41 * time.Minute)
	a.get(t, urgent)
	a.get(t, spare)
	a.poke()
	eventually(t, 5*time.Second, "urgent refresh done, the other deferred", func() bool {
		return metricValue(t, a.reg, "ekslink_pod_identity_upstream_calls_total", map[string]string{"kind": "refresh", "outcome": "success"}) == 1 &&
			metricValue(t, a.reg, "ekslink_pod_identity_rate_limited_total", map[string]string{"kind": "refresh"}) >= 1
	})
	if ans := a.get(t, urgent); ans.status != 200 || ans.body["AccessKeyId"] == first.body["AccessKeyId"] {
		t.Fatalf("urgent refresh not served: %d %s", ans.status, ans.raw)
	}
	if ans := a.get(t, spare); ans.status != 200 || ans.body["AccessKeyId"] != second.body["AccessKeyId"] {
		t.Fatalf("a refresh with time to spare spent the reserve: %d %s", ans.status, ans.raw)
	}
}

// Many pods flooding together (40 addresses x 5 concurrent requests, each address within its own
// budget) can drain the node's budget for new tokens. The reserve still serves a pod whose cached
// credentials ran out and refreshes credentials about to stop being served, and a quiet pod's new
// tokens go before the flooders' (they have spent their own budgets). Before the fix all of them
// went through the same budget as the flood.
func TestFloodFromManyPodsLeavesTheReserve(t *testing.T) {
	clock := newFakeClock()
	up := newUpstream(t, clock.Now)
	up.lifetime.Store(int64(time.Hour))
	a := startAgent(t, up.client(t, 0), ServerOptions{Now: clock.Now, RefreshBefore: 20 * time.Minute, ServeSkew: time.Minute, Rate: 10, Burst: 20})
	knownPod, urgentPod := clientFrom("127.0.0.2"), clientFrom("127.0.0.3")
	known := makeToken(clock.Now().Add(24*time.Hour), podClaims("shop", "checkout", "checkout-1"))
	if code, err := fetchOnce(knownPod, a.url, known); code != 200 {
		t.Fatalf("known pod: %d %v", code, err)
	}
	clock.Advance(5 * time.Minute)
	urgent := makeToken(clock.Now().Add(24*time.Hour), podClaims("shop", "cart", "cart-1"))
	if code, err := fetchOnce(urgentPod, a.url, urgent); code != 200 {
		t.Fatalf("urgent pod: %d %v", code, err)
	}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 40 {
		attacker := clientFrom("127.0.0." + strconv.Itoa(10+i))
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					_, _ = fetchOnce(attacker, a.url, makeForgedToken(clock.Now().Add(time.Hour), nil))
				}
			}()
		}
	}
	defer func() { stop(); wg.Wait() }()
	eventually(t, 20*time.Second, "the flood drains the budget for new tokens", func() bool {
		return metricValue(t, a.reg, "ekslink_pod_identity_rate_limited_total", map[string]string{"kind": "miss"}) >= 20
	})

	// T+59m30s: the known pod's credentials are no longer served (they were not refreshed, as in an
	// outage); the other pod's have 4m30s left, less than RefreshBefore/2.
	clock.Advance(54*time.Minute + 30*time.Second)
	a.poke()
	code, err := fetchOnce(knownPod, a.url, known)
	eventually(t, 10*time.Second, "urgent refresh during the flood", func() bool {
		return metricValue(t, a.reg, "ekslink_pod_identity_upstream_calls_total", map[string]string{"kind": "refresh", "outcome": "success"}) >= 1
	})
	newPod := 0
	for range 4 {
		if c, _ := fetchOnce(clientFrom("127.0.0.4"), a.url, makeToken(clock.Now().Add(time.Hour), nil)); c == 200 {
			newPod++
		}
	}
	stop()
	wg.Wait()
	t.Logf("known pod during the flood: %d %v; quiet pod with new tokens: %d/4 served; %d upstream calls", code, err, newPod, up.calls.Load())
	if code != 200 {
		t.Errorf("a pod whose credentials ran out got %d during the flood", code)
	}
	if newPod != 4 {
		t.Errorf("a quiet pod got credentials for %d/4 new tokens during the flood", newPod)
	}
}

// Within the budget for new tokens, a source that has spent more of its own budget leaves more for
// the others: a quiet pod's new token goes before the next one of a pod that has been busy.
func TestQuietSourceGoesBeforeBusyOnes(t *testing.T) {
	up := newUpstream(t, time.Now)
	a := startAgent(t, up.client(t, 0), ServerOptions{Rate: 0.001, Burst: 10, ReservedBurst: 2, SourceRate: 0.001, SourceBurst: 4, MissWait: 10 * time.Millisecond})
	get := func(from string) int {
		code, err := fetchOnce(clientFrom(from), a.url, makeToken(time.Now().Add(time.Hour), nil))
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	// A source must leave ReservedBurst + round(spent*(Burst-ReservedBurst)/2) in the node's budget,
	// spent being the fraction of its own burst spent before the request.
	for i := range 4 { // spent 0 .. 3/4, must leave 2 .. 5: the node's budget goes 10 -> 6
		if code := get("127.0.0.5"); code != 200 {
			t.Fatalf("busy source, new token %d: %d", i, code)
		}
	}
	if code := get("127.0.0.5"); code != 429 {
		t.Fatalf("a source past its own burst: %d", code)
	}
	for i := range 2 { // 6 -> 4
		if code := get("127.0.0.6"); code != 200 {
			t.Fatalf("second source, new token %d: %d", i, code)
		}
	}
	if code := get("127.0.0.6"); code != 429 { // spent 2/4: must leave 4, 3 would be left
		t.Fatalf("second source's third token: %d, want 429", code)
	}
	if code := get("127.0.0.7"); code != 200 { // spent 0: must leave 2
		t.Fatalf("a quiet source's first token: %d, want 200", code)
	}
}
