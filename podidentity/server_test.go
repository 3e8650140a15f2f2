package podidentity

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/go-logr/logr/funcr"
)

// The real AWS SDK, configured only through the container credential environment variables, gets
// credentials from the agent, which gets them from a SigV4-verifying EKS Auth endpoint.
func TestAWSSDKGetsCredentialsFromAgent(t *testing.T) {
	up := newUpstream(t, time.Now)
	a := startAgent(t, up.client(t, 0), ServerOptions{})
	token := makeToken(time.Now().Add(time.Hour), nil)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "eks-pod-identity-token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     a.url,
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile,
		"AWS_ACCESS_KEY_ID":                      "",
		"AWS_SECRET_ACCESS_KEY":                  "",
		"AWS_SESSION_TOKEN":                      "",
		"AWS_PROFILE":                            "",
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONFIG_FILE":                        filepath.Join(dir, "none"),
		"AWS_SHARED_CREDENTIALS_FILE":            filepath.Join(dir, "none"),
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_REGION":                             "us-west-2",
	} {
		t.Setenv(k, v)
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "ASIA0000000000000001" || creds.SecretAccessKey != "secret-"+token[len(token)-4:] || creds.SessionToken != "session" {
		t.Errorf("SDK credentials = %+v", creds)
	}
	if creds.AccountID != "111122223333" {
		t.Errorf("AccountID = %q", creds.AccountID)
	}
	if !creds.CanExpire || creds.Expires.Before(time.Now().Add(5*time.Hour)) {
		t.Errorf("expiry = %v (CanExpire %v)", creds.Expires, creds.CanExpire)
	}
	reqs := up.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/clusters/c1/assume-role-for-pod-identity" || !strings.Contains(string(reqs[0].Body), token) {
		t.Fatalf("upstream requests = %+v", reqs)
	}
}

func TestAnswerShapeIsExactlyTheContainerCredentialsDocument(t *testing.T) {
	up := newUpstream(t, time.Now)
	a := startAgent(t, up.client(t, 0), ServerOptions{})
	ans := a.get(t, makeToken(time.Now().Add(time.Hour), nil))
	if ans.status != 200 || ans.header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d %s", ans.status, ans.raw)
	}
	var keys []string
	dec := json.NewDecoder(strings.NewReader(ans.raw))
	_, _ = dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		_, _ = dec.Token()
	}
	if strings.Join(keys, ",") != "AccessKeyId,SecretAccessKey,Token,AccountId,Expiration" {
		t.Errorf("keys = %v", keys)
	}
	if _, err := time.Parse(time.RFC3339, ans.body["Expiration"]); err != nil {
		t.Errorf("Expiration %q is not RFC 3339", ans.body["Expiration"])
	}
}

func TestRequestsRefusedBeforeAnyUpstreamCall(t *testing.T) {
	up := newUpstream(t, time.Now)
	a := startAgent(t, up.client(t, 0), ServerOptions{MaxTokenBytes: 4096})
	valid := makeToken(time.Now().Add(time.Hour), nil)
	base := strings.TrimSuffix(a.url, CredentialsPath)
	cases := []struct {
		name, method, url, token, host string
		status                         int
		code                           string
	}{
		{"missing token is refused", "GET", a.url, "", "", 400, CodeInvalidToken},
		{"two-part token is refused", "GET", a.url, "abc.def", "", 400, CodeInvalidToken},
		{"four-part token is refused", "GET", a.url, valid + ".x", "", 400, CodeInvalidToken},
		{"bearer prefix is not a raw token", "GET", a.url, "Bearer " + valid, "", 400, CodeInvalidToken},
		{"non-JSON payload is refused", "GET", a.url, "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", "", 400, CodeInvalidToken},
		{"token without exp is refused", "GET", a.url, makeToken(time.Now(), map[string]any{"exp": nil}), "", 400, CodeInvalidToken},
		{"expired token is refused", "GET", a.url, makeToken(time.Now().Add(-time.Hour), nil), "", 400, CodeInvalidToken},
		{"token not yet valid is refused", "GET", a.url, makeToken(time.Now().Add(time.Hour), map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}), "", 400, CodeInvalidToken},
		{"oversized token is refused", "GET", a.url, makeToken(time.Now().Add(time.Hour), map[string]any{"pad": strings.Repeat("x", 4096)}), "", 400, CodeInvalidToken},
		{"foreign Host is refused", "GET", a.url, valid, "evil.example:80", 400, CodeInvalidHost},
		{"agent address followed by junk is refused", "GET", a.url, valid, "[fd00:ec2::23]evil", 400, CodeInvalidHost},
		{"other paths are not served", "GET", base + "/v2/credentials", valid, "", 404, CodeNotFound},
		{"POST is not allowed", "POST", a.url, valid, "", 405, CodeMethodNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ans := a.do(t, context.Background(), tc.method, tc.url, tc.token, tc.host)
			if ans.status != tc.status || ans.body["code"] != tc.code || ans.body["message"] == "" {
				t.Fatalf("answer %d %s, want %d %s", ans.status, ans.raw, tc.status, tc.code)
			}
		})
	}
	if n := up.calls.Load(); n != 0 {
		t.Errorf("%d upstream calls for refused requests", n)
	}
}

func TestAgentAddressesAreAcceptedHosts(t *testing.T) {
	up := newUpstream(t, time.Now)
	a := startAgent(t, up.client(t, 0), ServerOptions{})
	for _, host := range []string{"169.254.170.23", "169.254.170.23:80", "[fd00:ec2::23]", "[fd00:ec2::23]:80", "[FD00:EC2:0:0::23]:80", "[fd00:ec2:0:0:0:0:0:23]"} {
		if ans := a.do(t, context.Background(), "GET", a.url, makeToken(time.Now().Add(time.Hour), nil), host); ans.status != 200 {
			t.Errorf("Host %s: %d %s", host, ans.status, ans.raw)
		}
	}
}

func TestUpstreamExceptionsBecomeJSONErrors(t *testing.T) {
	cases := []struct {
		mode   string
		status int
		code   string
	}{
		{"invalid", 400, CodeInvalidToken},
		{"denied", 403, CodeAccessDenied},
		{"notfound", 404, CodeNoAssociation},
		{"throttle", 429, CodeThrottled},
		{"unavailable", 503, CodeUpstreamUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			up := newUpstream(t, time.Now)
			up.attempts = 1 // the client's retries are tested in eksauth
			up.mode.Store(tc.mode)
			a := startAgent(t, up.client(t, 0), ServerOptions{})
			ans := a.get(t, makeToken(time.Now().Add(time.Hour), nil))
			if ans.status != tc.status || ans.body["code"] != tc.code || ans.header.Get("Content-Type") != "application/json" {
				t.Fatalf("answer %d %s, want %d %s", ans.status, ans.raw, tc.status, tc.code)
			}
			if tc.status == 429 && ans.header.Get("Retry-After") != "2" {
				t.Errorf("Retry-After = %q, want the upstream's 2", ans.header.Get("Retry-After"))
			}
		})
	}
}

func TestThrottleAnswersAreCachedBriefly(t *testing.T) {
	clock := newFakeClock()
	up := newUpstream(t, clock.Now)
	up.mode.Store("throttle")
	up.attempts = 1
	a := startAgent(t, up.client(t, 0), ServerOptions{Now: clock.Now, ThrottleTTL: time.Second})
	token := makeToken(clock.Now().Add(time.Hour), nil)
	if ans := a.get(t, token); ans.status != 429 {
		t.Fatalf("%d %s", ans.status, ans.raw)
	}
	calls := up.calls.Load()
	if ans := a.get(t, token); ans.status != 429 {
		t.Fatalf("%d %s", ans.status, ans.raw)
	}
	if up.calls.Load() != calls {
		t.Fatalf("a throttled token went upstream again within the negative TTL")
	}
	up.mode.Store("ok")
	clock.Advance(3 * time.Second) // past Retry-After (2s)
	if ans := a.get(t, token); ans.status != 200 {
		t.Fatalf("after the throttle TTL: %d %s", ans.status, ans.raw)
	}
}

// 1,000 concurrent requests with one token make exactly one upstream call; half of the clients hang
// up while it is in flight, and the result is cached anyway.
func TestConcurrentRequestsShareOneUpstreamCall(t *testing.T) {
	up := newUpstream(t, time.Now)
	up.gate = make(chan struct{})
	a := startAgent(t, up.client(t, 0), ServerOptions{UpstreamTimeout: 30 * time.Second})
	token := makeToken(time.Now().Add(time.Hour), nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1000}}
	t.Cleanup(client.CloseIdleConnections)
	const n = 1000
	var wg sync.WaitGroup
	statuses := make([]int, n)
	bodies := make([]string, n)
	hangUp, cancel := context.WithCancel(context.Background())
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			if i%2 == 1 {
				ctx = hangUp
			}
			req, _ := http.NewRequestWithContext(ctx, "GET", a.url, nil)
			req.Header.Set("Authorization", token)
			resp, err := client.Do(req)
			if err != nil {
				statuses[i] = -1
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			statuses[i], bodies[i] = resp.StatusCode, string(b)
		}()
	}
	eventually(t, 30*time.Second, "all requests waiting on the flight", func() bool {
		return metricValue(t, a.reg, "ekslink_pod_identity_cache_misses_total", nil) >= n
	})
	cancel() // half the clients hang up mid-flight
	time.Sleep(20 * time.Millisecond)
	close(up.gate)
	wg.Wait()
	if c := up.calls.Load(); c != 1 {
		t.Fatalf("%d upstream calls, want exactly 1", c)
	}
	for i := 0; i < n; i += 2 {
		if statuses[i] != 200 || bodies[i] != bodies[0] {
			t.Fatalf("client %d: %d %s", i, statuses[i], bodies[i])
		}
	}
	if ans := a.get(t, token); ans.status != 200 || up.calls.Load() != 1 {
		t.Fatalf("after the burst: %d, %d upstream calls", ans.status, up.calls.Load())
	}
}

func TestClientThatHangsUpStillLeavesACachedResult(t *testing.T) {
	up := newUpstream(t, time.Now)
	up.gate = make(chan struct{})
	a := startAgent(t, up.client(t, 0), ServerOptions{})
	token := makeToken(time.Now().Add(time.Hour), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan answer)
	go func() { done <- a.do(t, ctx, "GET", a.url, token, "") }()
	eventually(t, 5*time.Second, "upstream call started", func() bool { return up.calls.Load() == 1 })
	cancel()
	if ans := <-done; ans.status != -1 {
		t.Fatalf("cancelled request got %d", ans.status)
	}
	eventually(t, 5*time.Second, "hang-up recorded", func() bool {
		return metricValue(t, a.reg, "ekslink_pod_identity_request_duration_seconds", map[string]string{"code": "499"}) == 1
	})
	close(up.gate)
	eventually(t, 5*time.Second, "result cached", func() bool { return a.Health().CacheEntries == 1 })
	if ans := a.get(t, token); ans.status != 200 || up.calls.Load() != 1 {
		t.Fatalf("%d %s with %d upstream calls", ans.status, ans.raw, up.calls.Load())
	}
}

// During an outage cached tokens keep getting 200 until ServeSkew before expiry, new tokens get
// 503 or 504 in bounded time, readiness follows upstream, and recovery needs nothing.
func TestOutageServesCachedCredentialsAndRecovers(t *testing.T) {
	clock := newFakeClock()
	up := newUpstream(t, clock.Now)
	up.lifetime.Store(int64(time.Hour))
	a := startAgent(t, up.client(t, 500*time.Millisecond), ServerOptions{
		Now:             clock.Now,
		UpstreamTimeout: time.Second, ServeSkew: 5 * time.Minute, RefreshBefore: 10 * time.Minute, UnhealthyAfter: 2,
	})
	cached := makeToken(clock.Now().Add(24*time.Hour), nil)
	if ans := a.get(t, cached); ans.status != 200 {
		t.Fatalf("%d %s", ans.status, ans.raw)
	}

	up.mode.Store("unavailable")
	fresh := makeToken(clock.Now().Add(24*time.Hour), nil)
	start := time.Now()
	if ans := a.get(t, fresh); ans.status != 503 || ans.body["code"] != CodeUpstreamUnavailable {
		t.Fatalf("new token during a 503 outage: %d %s", ans.status, ans.raw)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("503 took %s", d)
	}
	up.mode.Store("hang")
	hung := makeToken(clock.Now().Add(24*time.Hour), nil)
	start = time.Now()
	if ans := a.get(t, hung); ans.status != 504 || ans.body["code"] != CodeUpstreamTimeout {
		t.Fatalf("new token during a hanging outage: %d %s", ans.status, ans.raw)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("504 took %s, UpstreamTimeout is 1s", d)
	}
	if a.Ready() {
		t.Error("ready while EKS Auth is down")
	}
	rec := httpGet(a.ReadinessHandler())
	if rec != 503 {
		t.Errorf("readyz = %d", rec)
	}
	if live := httpGet(a.LivenessHandler()); live != 200 {
		t.Errorf("healthz = %d during an outage", live)
	}

	// Cached credentials: served through the refresh window while refreshes fail ...
	clock.Advance(50 * time.Minute)
	a.poke()
	if ans := a.get(t, cached); ans.status != 200 {
		t.Fatalf("cached token 50m into a 1h credential: %d %s", ans.status, ans.raw)
	}
	// ... and no longer once fewer than ServeSkew remain.
	clock.Advance(6 * time.Minute)
	a.poke()
	if ans := a.get(t, cached); ans.status != 504 && ans.status != 503 {
		t.Fatalf("cached token past expiry-skew: %d %s", ans.status, ans.raw)
	}

	up.mode.Store("ok")
	for _, tok := range []string{cached, fresh} {
		if ans := a.get(t, tok); ans.status != 200 {
			t.Fatalf("after recovery: %d %s", ans.status, ans.raw)
		}
	}
	if !a.Ready() || httpGet(a.ReadinessHandler()) != 200 {
		t.Error("not ready after recovery")
	}
}

func httpGet(h http.Handler) int {
	rec := &statusRecorder{header: http.Header{}, status: 200}
	h.ServeHTTP(rec, &http.Request{Method: "GET"})
	return rec.status
}

type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(s int)           { r.status = s }

func TestRefreshAheadReplacesCredentialsBeforeExpiry(t *testing.T) {
	clock := newFakeClock()
	up := newUpstream(t, clock.Now)
	up.lifetime.Store(int64(time.Hour))
	a := startAgent(t, up.client(t, 0), ServerOptions{Now: clock.Now, RefreshBefore: 15 * time.Minute, ServeSkew: time.Minute})
	token := makeToken(clock.Now().Add(24*time.Hour), nil)
	first := a.get(t, token)
	clock.Advance(46 * time.Minute) // past expiry - RefreshBefore (jitter is at most 6m earlier)
	a.poke()
	eventually(t, 5*time.Second, "background refresh", func() bool { return up.calls.Load() == 2 })
	eventually(t, 5*time.Second, "refreshed credentials served", func() bool {
		return a.get(t, token).body["AccessKeyId"] != first.body["AccessKeyId"]
	})
	if v := metricValue(t, a.reg, "ekslink_pod_identity_upstream_calls_total", map[string]string{"kind": "refresh", "outcome": "success"}); v != 1 {
		t.Errorf("refresh metric = %v", v)
	}
}

func TestEntriesNotPresentedLapseInsteadOfRefreshingForever(t *testing.T) {
	clock := newFakeClock()
	up := newUpstream(t, clock.Now)
	up.lifetime.Store(int64(time.Hour))
	a := startAgent(t, up.client(t, 0), ServerOptions{Now: clock.Now, RefreshBefore: 15 * time.Minute, ServeSkew: time.Minute, IdleTimeout: 30 * time.Minute})
	if ans := a.get(t, makeToken(clock.Now().Add(24*time.Hour), nil)); ans.status != 200 {
		t.Fatal(ans.raw)
	}
	clock.Advance(46 * time.Minute) // refresh due, but the token was last seen 46m ago
	a.poke()
	clock.Advance(14 * time.Minute) // past expiry - ServeSkew
	a.poke()
	eventually(t, 5*time.Second, "lapsed entry evicted", func() bool { return a.Health().CacheEntries == 0 })
	if c := up.calls.Load(); c != 1 {
		t.Errorf("%d upstream calls; a lapsed entry must not be refreshed", c)
	}
}

func TestLRUDropsTheLeastRecentlyUsedToken(t *testing.T) {
	up := newUpstream(t, time.Now)
	a := startAgent(t, up.client(t, 0), ServerOptions{CacheSize: 2})
	ta, tb, tc := makeToken(time.Now().Add(time.Hour), nil), makeToken(time.Now().Add(time.Hour), nil), makeToken(time.Now().Add(time.Hour), nil)
	for _, tok := range []string{ta, tb, ta, tc} { // a is used after b, so b is the LRU when c arrives
		if ans := a.get(t, tok); ans.status != 200 {
			t.Fatal(ans.raw)
		}
	}
	if c := up.calls.Load(); c != 3 {
		t.Fatalf("%d calls", c)
	}
	a.get(t, ta)
	if c := up.calls.Load(); c != 3 {
		t.Fatalf("recently used token was evicted (%d calls)", c)
	}
	a.get(t, tb)
	if c := up.calls.Load(); c != 4 {
		t.Fatalf("least recently used token was kept (%d calls)", c)
	}
}

func TestRateBudgetLetsMissesBeatRefreshes(t *testing.T) {
	clock := newFakeClock()
	up := newUpstream(t, clock.Now)
	up.lifetime.Store(int64(time.Hour))
	a := startAgent(t, up.client(t, 0), ServerOptions{
		Now: clock.Now, RefreshBefore: 15 * time.Minute, ServeSkew: time.Minute,
		Rate: 0.001, Burst: 4, MissWait: 10 * time.Millisecond, SourceBurst: 1000,
	})
	t1, t2 := makeToken(clock.Now().Add(24*time.Hour), nil), makeToken(clock.Now().Add(24*time.Hour), nil)
	a.get(t, t1)
	a.get(t, t2) // 2 of 4 tokens left: refreshes need more than half the burst
	clock.Advance(50 * time.Minute)
	a.get(t, t1) // keep both in use
	a.get(t, t2)
	a.poke()
	eventually(t, 5*time.Second, "refresh deferred by the budget", func() bool {
		return metricValue(t, a.reg, "ekslink_pod_identity_rate_limited_total", map[string]string{"kind": "refresh"}) >= 1
	})
	if c := up.calls.Load(); c != 2 {
		t.Fatalf("%d upstream calls; refreshes spent the misses' reserve", c)
	}
	// One more new token fits above the reserve (ReservedBurst defaults to a quarter of the burst).
	if ans := a.get(t, makeToken(clock.Now().Add(24*time.Hour), nil)); ans.status != 200 {
		t.Fatalf("miss: %d %s", ans.status, ans.raw)
	}
	ans := a.get(t, makeToken(clock.Now().Add(24*time.Hour), nil))
	if ans.status != 429 || ans.body["code"] != CodeThrottled || ans.header.Get("Retry-After") == "" {
		t.Fatalf("miss beyond the budget: %d %s", ans.status, ans.raw)
	}
	if v := metricValue(t, a.reg, "ekslink_pod_identity_rate_limited_total", map[string]string{"kind": "miss"}); v != 1 {
		t.Errorf("miss rejections = %v", v)
	}
}

func TestMetricsCoverRequestsCacheAndUpstream(t *testing.T) {
	up := newUpstream(t, time.Now)
	a := startAgent(t, up.client(t, 0), ServerOptions{})
	tok := makeToken(time.Now().Add(time.Hour), nil)
	a.get(t, tok)
	a.get(t, tok)
	a.get(t, "garbage")
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ekslink_pod_identity_request_duration_seconds", map[string]string{"code": "200"}, 2},
		{"ekslink_pod_identity_request_duration_seconds", map[string]string{"code": "400"}, 1},
		{"ekslink_pod_identity_cache_hits_total", nil, 1},
		{"ekslink_pod_identity_cache_misses_total", nil, 1},
		{"ekslink_pod_identity_cache_entries", nil, 1},
		{"ekslink_pod_identity_upstream_calls_total", map[string]string{"kind": "miss", "outcome": "success"}, 1},
		{"ekslink_pod_identity_upstream_duration_seconds", map[string]string{"outcome": "success"}, 1},
	} {
		if v := metricValue(t, a.reg, c.name, c.labels); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}
	mfs, _ := a.reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(tok, lp.GetValue()) && len(lp.GetValue()) > 8 {
					t.Errorf("metric %s carries token material", mf.GetName())
				}
			}
		}
	}
}

// A listener that cannot bind (the agent address is not on this host) does not stop the others.
func TestListenerThatCannotBindDoesNotStopTheOthers(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	_ = probe.Close()
	var mu sync.Mutex
	var logs []string
	log := funcr.New(func(prefix, args string) { mu.Lock(); logs = append(logs, args); mu.Unlock() }, funcr.Options{})
	up := newUpstream(t, time.Now)
	s, err := NewServer(up.client(t, 0), ServerOptions{ClusterName: "c1", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	unbindable := net.JoinHostPort(AgentIPv4, "0")
	done := make(chan error, 1)
	go func() {
		done <- s.ServeAddrs(ctx, []string{unbindable, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, time.Hour)
	}()
	a := &agent{Server: s, url: "http://127.0.0.1:" + strconv.Itoa(port) + CredentialsPath}
	eventually(t, 5*time.Second, "loopback listener serving", func() bool {
		return a.get(t, makeToken(time.Now().Add(time.Hour), nil)).status == 200
	})
	mu.Lock()
	joined := strings.Join(logs, "\n")
	mu.Unlock()
	mustContain(t, joined, "listener failed")
	mustContain(t, joined, unbindable)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeAddrs: %v", err)
	}
	if err := s.ServeAddrs(context.Background(), []string{unbindable}, 0); err == nil {
		t.Fatal("no error when no listener binds")
	}
}

func TestNewServerRefusesMissingClusterOrUpstream(t *testing.T) {
	if _, err := NewServer(newUpstream(t, time.Now).client(t, 0), ServerOptions{}); err == nil {
		t.Error("no cluster accepted")
	}
	if _, err := NewServer(nil, ServerOptions{ClusterName: "c1"}); err == nil {
		t.Error("no upstream accepted")
	}
}

// Bad numbers are refused up front: a negative cache size used to panic on the first request, a
// negative worker count in NewServer, a negative ServeSkew served expired credentials.
func TestNewServerRefusesOptionsThatCannotWork(t *testing.T) {
	up := newUpstream(t, time.Now).client(t, 0)
	for name, o := range map[string]ServerOptions{
		"negative cache size":                {CacheSize: -1},
		"negative refresh workers":           {RefreshWorkers: -1},
		"negative serve skew":                {ServeSkew: -time.Minute},
		"negative upstream timeout":          {UpstreamTimeout: -time.Second},
		"negative rate":                      {Rate: -1},
		"refresh window inside the skew":     {RefreshBefore: time.Minute, ServeSkew: 2 * time.Minute},
		"refresh window equal to the skew":   {RefreshBefore: time.Minute, ServeSkew: time.Minute},
		"default refresh inside a long skew": {ServeSkew: 2 * time.Hour},
		"reserve as large as the burst":      {Burst: 4, ReservedBurst: 4},
		"negative reserve":                   {ReservedBurst: -1},
		"negative source rate":               {SourceRate: -1},
		"negative source burst":              {SourceBurst: -1},
	} {
		t.Run(name, func(t *testing.T) {
			o.ClusterName = "c1"
			var s *Server
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("NewServer panicked: %v", r)
					}
				}()
				s, err = NewServer(up, o)
			}()
			if err == nil {
				s.Close()
				t.Fatal("accepted")
			}
		})
	}
	s, err := NewServer(up, ServerOptions{ClusterName: "c1", RefusalTTL: -1})
	if err != nil {
		t.Fatalf("a negative RefusalTTL (off) was refused: %v", err)
	}
	s.Close()
}

func TestFailedBindIsRetriedUntilItSucceeds(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	busyAddr := busy.Addr().String()
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	freeAddr := free.Addr().String()
	_ = free.Close()
	up := newUpstream(t, time.Now)
	s, err := NewServer(up.client(t, 0), ServerOptions{ClusterName: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeAddrs(ctx, []string{freeAddr, busyAddr}, 20*time.Millisecond) }()
	a := &agent{Server: s, url: "http://" + freeAddr + CredentialsPath}
	eventually(t, 5*time.Second, "first listener serving", func() bool {
		return a.get(t, makeToken(time.Now().Add(time.Hour), nil)).status == 200
	})
	_ = busy.Close() // the address becomes available
	b := &agent{Server: s, url: "http://" + busyAddr + CredentialsPath}
	eventually(t, 5*time.Second, "second listener bound by a retry", func() bool {
		return b.get(t, makeToken(time.Now().Add(time.Hour), nil)).status == 200
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestFailedRefreshIsRetriedAndRecoversBeforeExpiry(t *testing.T) {
	clock := newFakeClock()
	up := newUpstream(t, clock.Now)
	up.lifetime.Store(int64(time.Hour))
	a := startAgent(t, up.client(t, 0), ServerOptions{Now: clock.Now, RefreshBefore: 15 * time.Minute, ServeSkew: time.Minute})
	token := makeToken(clock.Now().Add(24*time.Hour), nil)
	first := a.get(t, token)
	up.mode.Store("unavailable")
	clock.Advance(46 * time.Minute)
	a.poke()
	eventually(t, 5*time.Second, "refresh attempted", func() bool {
		return metricValue(t, a.reg, "ekslink_pod_identity_upstream_calls_total", map[string]string{"kind": "refresh", "outcome": "unavailable"}) >= 1
	})
	if ans := a.get(t, token); ans.status != 200 || ans.body["AccessKeyId"] != first.body["AccessKeyId"] {
		t.Fatalf("old credentials not served while refresh fails: %d %s", ans.status, ans.raw)
	}
	up.mode.Store("ok")
	clock.Advance(3 * time.Minute) // past the first backoff (5s +- 20%)
	a.poke()
	eventually(t, 5*time.Second, "refresh retried and succeeded", func() bool {
		return metricValue(t, a.reg, "ekslink_pod_identity_upstream_calls_total", map[string]string{"kind": "refresh", "outcome": "success"}) == 1
	})
	if ans := a.get(t, token); ans.body["AccessKeyId"] == first.body["AccessKeyId"] {
		t.Fatalf("refreshed credentials not served: %s", ans.raw)
	}
}

func TestRefusalsAreCachedBrieflyPerToken(t *testing.T) {
	for _, mode := range []string{"notfound", "denied", "invalid"} {
		t.Run(mode, func(t *testing.T) {
			clock := newFakeClock()
			up := newUpstream(t, clock.Now)
			up.attempts = 1
			up.mode.Store(mode)
			a := startAgent(t, up.client(t, 0), ServerOptions{Now: clock.Now, RefusalTTL: 5 * time.Second})
			token := makeToken(clock.Now().Add(time.Hour), nil)
			first := a.get(t, token)
			for range 3 {
				if ans := a.get(t, token); ans.status != first.status || ans.body["code"] != first.body["code"] {
					t.Fatalf("cached refusal %d %s, first was %d %s", ans.status, ans.raw, first.status, first.raw)
				}
			}
			if c := up.calls.Load(); c != 1 {
				t.Fatalf("%d upstream calls within the refusal TTL", c)
			}
			up.mode.Store("ok") // the association was created
			clock.Advance(6 * time.Second)
			if ans := a.get(t, token); ans.status != 200 {
				t.Fatalf("after the refusal TTL: %d %s", ans.status, ans.raw)
			}
		})
	}
}

func TestLapsedEntryPresentedAgainIsRefreshedAgain(t *testing.T) {
	clock := newFakeClock()
	up := newUpstream(t, clock.Now)
	up.lifetime.Store(int64(time.Hour))
	a := startAgent(t, up.client(t, 0), ServerOptions{Now: clock.Now, RefreshBefore: 15 * time.Minute, ServeSkew: time.Minute, IdleTimeout: 30 * time.Minute})
	token := makeToken(clock.Now().Add(24*time.Hour), nil)
	a.get(t, token)
	clock.Advance(46 * time.Minute)
	a.poke()
	eventually(t, 5*time.Second, "entry lapsed", func() bool {
		a.cache.mu.Lock()
		defer a.cache.mu.Unlock()
		for _, e := range a.cache.entries {
			return e.lapsed
		}
		return false
	})
	if ans := a.get(t, token); ans.status != 200 {
		t.Fatal(ans.raw)
	}
	eventually(t, 5*time.Second, "refresh after the token came back", func() bool { return up.calls.Load() == 2 })
}

// A background refresh that EKS Auth refuses definitively (the association was deleted, access is
// denied, the token was revoked) stops the cached credentials from being served: the agent fails
// closed instead of handing out a role the pod no longer has until the old credentials expire.
func TestRefusedRefreshStopsServingCachedCredentials(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		status int
		code   string
	}{
		{"notfound", 404, CodeNoAssociation},
		{"denied", 403, CodeAccessDenied},
		{"invalid", 400, CodeInvalidToken},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			clock := newFakeClock()
			up := newUpstream(t, clock.Now)
			up.attempts = 1
			up.lifetime.Store(int64(time.Hour))
			a := startAgent(t, up.client(t, 0), ServerOptions{Now: clock.Now, RefreshBefore: 15 * time.Minute, ServeSkew: time.Minute})
			token := makeToken(clock.Now().Add(24*time.Hour), nil)
			if ans := a.get(t, token); ans.status != 200 {
				t.Fatalf("%d %s", ans.status, ans.raw)
			}
			up.mode.Store(tc.mode)
			clock.Advance(46 * time.Minute)
			a.poke()
			eventually(t, 5*time.Second, "refused refresh", func() bool { return up.calls.Load() == 2 })
			eventually(t, 5*time.Second, "refusal recorded", func() bool {
				a.cache.mu.Lock()
				defer a.cache.mu.Unlock()
				return len(a.cache.flights) == 0
			})
			if ans := a.get(t, token); ans.status != tc.status || ans.body["code"] != tc.code {
				t.Fatalf("after a refused refresh: %d %s, want %d %s", ans.status, ans.raw, tc.status, tc.code)
			}
		})
	}
}
