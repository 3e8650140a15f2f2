package podidentity

import (
	"testing"
	"time"
)

// Issue 15 item 6: a Retry-After of 100000 s from EKS Auth reached clients unchanged. The agent
// caps it as it caps its own throttle cache: 30 s, and the token is answered from the cache until
// then without asking EKS Auth again.
func TestUpstreamRetryAfterIsCapped(t *testing.T) {
	clock := newFakeClock()
	up := newUpstream(t, clock.Now)
	up.attempts = 1
	up.mode.Store("throttle-long")
	a := startAgent(t, up.client(t, 0), ServerOptions{Now: clock.Now})
	token := makeToken(clock.Now().Add(time.Hour), nil)
	ans := a.get(t, token)
	if ans.status != 429 || ans.body["code"] != CodeThrottled || ans.header.Get("Retry-After") != "30" {
		t.Fatalf("answer %d Retry-After=%q %s, want 429 with Retry-After 30", ans.status, ans.header.Get("Retry-After"), ans.raw)
	}
	clock.Advance(29 * time.Second)
	if ans := a.get(t, token); ans.status != 429 || up.calls.Load() != 1 {
		t.Fatalf("within the capped Retry-After: %d %s, %d upstream calls", ans.status, ans.raw, up.calls.Load())
	}
	up.mode.Store("ok")
	clock.Advance(2 * time.Second)
	if ans := a.get(t, token); ans.status != 200 {
		t.Fatalf("after 30s: %d %s", ans.status, ans.raw)
	}
}

// Issue 15 item 6: credentials that arrive expired, or expiring within the serve skew, were served
// with 200 and never cached, so every request went upstream. They are an upstream fault: a JSON
// 502 the SDKs retry (aws-sdk-go-v2 aws/retry DefaultRetryableHTTPStatusCodes has 502), cached
// for ThrottleTTL like a throttle.
func TestStaleCredentialsFromUpstreamAreAnError(t *testing.T) {
	for _, mode := range []string{"expired", "stale"} {
		t.Run(mode, func(t *testing.T) {
			clock := newFakeClock()
			up := newUpstream(t, clock.Now)
			up.attempts = 1
			up.mode.Store(mode)
			a := startAgent(t, up.client(t, 0), ServerOptions{Now: clock.Now})
			token := makeToken(clock.Now().Add(time.Hour), nil)
			for i := range 3 {
				ans := a.get(t, token)
				if ans.status != 502 || ans.body["code"] != CodeInvalidUpstreamAnswer || ans.header.Get("Content-Type") != "application/json" {
					t.Fatalf("request %d: %d %s, want 502 %s", i, ans.status, ans.raw, CodeInvalidUpstreamAnswer)
				}
				mustContain(t, ans.body["message"], "serve skew")
			}
			if c := up.calls.Load(); c != 1 {
				t.Errorf("%d upstream calls for 3 requests within ThrottleTTL", c)
			}
			if v := metricValue(t, a.reg, "ekslink_pod_identity_upstream_calls_total", map[string]string{"kind": "miss", "outcome": "invalid_answer"}); v != 1 {
				t.Errorf("invalid_answer metric = %v", v)
			}
			up.mode.Store("ok")
			clock.Advance(2 * time.Second)
			if ans := a.get(t, token); ans.status != 200 {
				t.Fatalf("after EKS Auth recovered: %d %s", ans.status, ans.raw)
			}
		})
	}
}

// A background refresh answered with expired credentials is a failed refresh: the credentials
// still valid keep being served (before, the expired ones replaced them and every request went
// upstream) and the refresh is retried.
func TestStaleRefreshKeepsServingValidCredentials(t *testing.T) {
	clock := newFakeClock()
	up := newUpstream(t, clock.Now)
	up.attempts = 1
	up.lifetime.Store(int64(time.Hour))
	a := startAgent(t, up.client(t, 0), ServerOptions{Now: clock.Now, RefreshBefore: 15 * time.Minute, ServeSkew: time.Minute})
	token := makeToken(clock.Now().Add(24*time.Hour), nil)
	first := a.get(t, token)
	up.mode.Store("expired")
	clock.Advance(46 * time.Minute)
	a.poke()
	eventually(t, 5*time.Second, "refresh answered with expired credentials", func() bool {
		a.cache.mu.Lock()
		defer a.cache.mu.Unlock()
		return up.calls.Load() >= 2 && len(a.cache.flights) == 0
	})
	if v := metricValue(t, a.reg, "ekslink_pod_identity_upstream_calls_total", map[string]string{"kind": "refresh", "outcome": "invalid_answer"}); v != 1 {
		t.Errorf("refresh invalid_answer metric = %v", v)
	}
	calls := up.calls.Load()
	for range 3 {
		if ans := a.get(t, token); ans.status != 200 || ans.body["AccessKeyId"] != first.body["AccessKeyId"] {
			t.Fatalf("valid cached credentials not served after a stale refresh: %d %s", ans.status, ans.raw)
		}
	}
	if c := up.calls.Load(); c != calls {
		t.Errorf("requests went upstream (%d calls) while valid credentials were cached", c-calls)
	}
	up.mode.Store("ok")
	clock.Advance(3 * time.Minute) // past the first backoff
	a.poke()
	eventually(t, 5*time.Second, "refresh retried", func() bool {
		return metricValue(t, a.reg, "ekslink_pod_identity_upstream_calls_total", map[string]string{"kind": "refresh", "outcome": "success"}) == 1
	})
}
