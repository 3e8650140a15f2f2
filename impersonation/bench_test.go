package impersonation

import (
	"context"
	"io"
	"net/http"
	"testing"
)

// BenchmarkHandlerGET measures the proxy's own overhead: parallel small GETs through the Handler
// (HTTP/1.1 keep-alive in front, HTTP/2 behind) to a local TLS upstream.
func BenchmarkHandlerGET(b *testing.B) {
	up := newRecordingUpstream(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm"}}`)
	})
	cfg, _ := upstreamConfig(b, up, "tok")
	h := newTestHandler(b, Config{Upstream: cfg})
	proxy := serveHandler(b, h)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	defer cpuMeter(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, proxy+"/api/v1/namespaces/default/configmaps/cm", nil)
			req.Header.Set(DefaultIdentityHeader, testSessionARN)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkRoundTripper measures header sanitizing and impersonation alone.
func BenchmarkRoundTripper(b *testing.B) {
	rt := NewRoundTripper(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	}), DefaultIdentityHeader)
	p, _ := ParseARN(testSessionARN)
	id, _ := DefaultMapper(p)
	ctx := WithIdentity(context.Background(), id)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example/api/v1/pods", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "kubectl")
	req.Header.Set(DefaultIdentityHeader, testSessionARN)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rt.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseARN measures identity validation and mapping.
func BenchmarkParseARN(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		p, err := ParseARN(testSessionARN)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DefaultMapper(p); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuMeter starts counting the CPU time of the whole process (every goroutine, the garbage
// collector included); the function it returns reports it per operation as "cpu-ns/op", which a
// machine shared with other work disturbs far less than the wall-clock ns/op.
func cpuMeter(b *testing.B) func() {
	b.Helper()
	start := processCPU(b)
	return func() { b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op") }
}
