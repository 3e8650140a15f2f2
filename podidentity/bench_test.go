package podidentity

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkCachedHandler is the agent's cached path without the network: Host check, token hash,
// LRU touch, metrics, pre-encoded body.
func BenchmarkCachedHandler(b *testing.B) {
	up := newUpstream(b, time.Now)
	a := startAgent(b, up.client(b, 0), ServerOptions{})
	token := makeToken(time.Now().Add(time.Hour), nil)
	if ans := a.get(b, token); ans.status != 200 {
		b.Fatal(ans.raw)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "http://169.254.170.23/v1/credentials", nil)
		req.Header.Set("Authorization", token)
		for pb.Next() {
			w := httptest.NewRecorder()
			a.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
}

// BenchmarkCachedLoopback is the cached path as an SDK sees it: HTTP on loopback.
func BenchmarkCachedLoopback(b *testing.B) {
	up := newUpstream(b, time.Now)
	a := startAgent(b, up.client(b, 0), ServerOptions{})
	token := makeToken(time.Now().Add(time.Hour), nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if code, _ := fetchOnce(client, a.url, token); code != 200 {
				b.Fatal(code)
			}
		}
	})
}

// BenchmarkMissSingleFlight measures a cache miss against the local EKS Auth endpoint (TLS + SigV4).
func BenchmarkMissSingleFlight(b *testing.B) {
	up := newUpstream(b, time.Now)
	a := startAgent(b, up.client(b, 0), ServerOptions{Rate: 1e6, Burst: 1e6, SourceRate: 1e6, SourceBurst: 1e6, CacheSize: 1 << 20})
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = makeToken(time.Now().Add(time.Hour), nil)
	}
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodGet, "http://169.254.170.23/v1/credentials", nil)
		req.Header.Set("Authorization", tokens[i])
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
