package podidentity

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ekslink/ekslink/envtest/awstest"
)

// The metrics convention of every package (README "Metrics"): Servers on one Registerer share the
// collectors, so their counts (and cache entries) add up; a nil Registerer registers nothing.
func TestServersShareTheCollectorsOfARegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	up := newUpstream(t, time.Now).client(t, 0)
	first, err := NewServer(up, ServerOptions{ClusterName: "c1", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.Close)
	second, err := NewServer(up, ServerOptions{ClusterName: "c1", Registerer: reg})
	if err != nil {
		t.Fatalf("second Server on one registry: %v", err)
	}
	t.Cleanup(second.Close)
	if first.metrics.hits != second.metrics.hits || first.metrics.entries != second.metrics.entries {
		t.Error("the second Server's collectors are not the first one's: their counts would not add up")
	}
	unregistered, err := NewServer(up, ServerOptions{ClusterName: "c1"})
	if err != nil {
		t.Fatalf("nil Registerer: %v", err)
	}
	unregistered.Close()
}

// The upstream agent's series keep their names, labels and label values, and count the same events
// as aws/eks-pod-identity-agent v0.1.37: pod_identity_http_response{code} per /v1/credentials answer
// (pkg/handlers/eks_credential_handler.go), pod_identity_cache_state{state} with "miss" when a
// request starts an EKS Auth call, "hit" when a background renewal succeeds and "evicted" when
// credentials leave the cache, and pod_identity_cache_errors{type,code} per failed renewal
// (internal/credsretriever/refreshing_cache.go, internal/cloud/eksauth/errors.go).
func TestUpstreamAgentMetricsCountTheSameEvents(t *testing.T) {
	clock := newFakeClock()
	// An EKS Auth endpoint whose answer is chosen per token (modes), else the normal answer.
	var modes sync.Map
	up := &upstream{Server: awstest.New(t, awstest.Options{Service: "eks-auth", Protocol: awstest.RESTJSON}), now: clock.Now, attempts: 1}
	up.mode.Store("ok")
	up.lifetime.Store(int64(time.Hour))
	up.Handle("POST /clusters/{name}/assume-role-for-pod-identity", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct{ Token string }
		_ = json.Unmarshal(body, &req)
		if m, ok := modes.Load(req.Token); ok {
			up.calls.Add(1)
			e := m.([2]any)
			awstest.WriteRESTJSONError(w, e[0].(int), e[1].(string), "emulated")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		up.serve(w, r)
	})
	a := startAgent(t, up.client(t, 0), ServerOptions{Now: clock.Now, RefreshBefore: 15 * time.Minute, ServeSkew: time.Minute, RefusalTTL: -1})
	renewed := makeToken(clock.Now().Add(24*time.Hour), nil)
	refused := makeToken(clock.Now().Add(24*time.Hour), nil)
	failing := makeToken(clock.Now().Add(24*time.Hour), nil)

	// Misses, a cache answer, a refused request and an upstream error on a miss.
	for _, tok := range []string{renewed, renewed, refused, failing} {
		if ans := a.get(t, tok); ans.status != 200 {
			t.Fatalf("%d %s", ans.status, ans.raw)
		}
	}
	a.get(t, "garbage")
	up.mode.Store("unavailable")
	a.get(t, makeToken(clock.Now().Add(time.Hour), nil))
	// Not /v1/credentials: upstream's mux answers those without its handler.
	a.do(t, t.Context(), http.MethodGet, strings.TrimSuffix(a.url, CredentialsPath)+"/other", renewed, "")
	want := map[string]float64{
		`pod_identity_http_response{code="200"}`: 4,
		`pod_identity_http_response{code="400"}`: 1,
		`pod_identity_http_response{code="503"}`: 1,
		`pod_identity_http_response{code="404"}`: 0,
		`pod_identity_cache_state{state="miss"}`: 4,
		`pod_identity_cache_state{state="hit"}`:  0,
	}
	checkSeries(t, a, want)

	// Background renewals: one succeeds, one is refused for good (and drops the credentials), one
	// fails in a way worth retrying.
	up.mode.Store("ok")
	clock.Advance(46 * time.Minute)
	modes.Store(refused, [2]any{400, "AccessDeniedException"})
	modes.Store(failing, [2]any{503, "ServiceUnavailableException"})
	a.poke()
	eventually(t, 5*time.Second, "three renewals", func() bool {
		return metricValue(t, a.reg, "ekslink_pod_identity_upstream_calls_total", map[string]string{"kind": "refresh"}) == 3
	})
	want[`pod_identity_cache_state{state="hit"}`] = 1
	want[`pod_identity_cache_errors{code="AccessDeniedException",type="NonRecoverable"}`] = 1
	want[`pod_identity_cache_errors{code="ServiceUnavailableException",type="Recoverable"}`] = 1
	want[`pod_identity_cache_state{state="evicted"}`] = 1
	deadline := time.Now().Add(5 * time.Second)
	for seriesMatch(t, a, want) != "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	checkSeries(t, a, want)

	// Credentials that stop being servable leave the cache: evicted.
	clock.Advance(time.Hour)
	a.poke()
	eventually(t, 5*time.Second, "expired entries evicted", func() bool {
		return strings.Contains(exposition(t, a), `pod_identity_cache_state{state="evicted"} 3`)
	})
}

// The size bound pushing credentials out counts as "evicted", as upstream's LRU does.
func TestUpstreamEvictedCountsTheSizeBound(t *testing.T) {
	up := newUpstream(t, time.Now)
	a := startAgent(t, up.client(t, 0), ServerOptions{CacheSize: 1})
	for range 3 {
		if ans := a.get(t, makeToken(time.Now().Add(time.Hour), nil)); ans.status != 200 {
			t.Fatal(ans.raw)
		}
	}
	checkSeries(t, a, map[string]float64{`pod_identity_cache_state{state="evicted"}`: 2, `pod_identity_cache_state{state="miss"}`: 3})
}

func exposition(t testing.TB, a *agent) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// seriesMatch compares the scraped text exposition with want (0 means absent or 0) and describes
// the differences.
func seriesMatch(t testing.TB, a *agent, want map[string]float64) string {
	t.Helper()
	text := exposition(t, a)
	var bad []string
	for series, v := range want {
		got := "0"
		for _, l := range strings.Split(text, "\n") {
			if rest, ok := strings.CutPrefix(l, series+" "); ok {
				got = rest
			}
		}
		if w := strconv.FormatFloat(v, 'g', -1, 64); got != w {
			bad = append(bad, series+" = "+got+", want "+w)
		}
	}
	return strings.Join(bad, "; ")
}

func checkSeries(t testing.TB, a *agent, want map[string]float64) {
	t.Helper()
	if bad := seriesMatch(t, a, want); bad != "" {
		t.Fatalf("%s\n%s", bad, exposition(t, a))
	}
}

// MaxRetention is the upstream agent's --max-credential-retention-before-renewal: credentials are
// renewed at the latest that long after they were fetched (internal/credsretriever/refreshing_cache.go
// caches them for min(retention, expiry)). Six-hour credentials with a 3h retention are renewed
// after 3h although RefreshBefore alone would wait until 5h.
func TestMaxRetentionRenewsEarlierThanRefreshBefore(t *testing.T) {
	for _, retention := range []time.Duration{0, 3 * time.Hour} {
		t.Run(retention.String(), func(t *testing.T) {
			clock := newFakeClock()
			up := newUpstream(t, clock.Now)
			a := startAgent(t, up.client(t, 0), ServerOptions{Now: clock.Now, MaxRetention: retention})
			token := makeToken(clock.Now().Add(24*time.Hour), nil)
			if ans := a.get(t, token); ans.status != 200 {
				t.Fatal(ans.raw)
			}
			clock.Advance(3*time.Hour + time.Second)
			a.poke()
			if retention == 0 {
				time.Sleep(200 * time.Millisecond)
				if n := up.calls.Load(); n != 1 {
					t.Fatalf("%d calls: renewed before RefreshBefore without a retention bound", n)
				}
				return
			}
			eventually(t, 5*time.Second, "renewal after the retention", func() bool { return up.calls.Load() == 2 })
		})
	}
}
