package impersonation

import (
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"
)

// The plain-request path rewrites URLs exactly as httputil.ProxyRequest.SetURL does.
func TestRewriteURLMatchesReverseProxy(t *testing.T) {
	for _, target := range []string{"https://api:6443", "https://api:6443/", "https://lb/prefix", "https://lb/prefix/", "https://lb/p%2Fx?a=1"} {
		for _, in := range []string{"/api/v1/pods", "/api/v1/namespaces/a%2Fb/pods?limit=1", "/", "/apis?x=1&y=%20", "/a%2fb/c"} {
			tu, _ := url.Parse(target)
			want, _ := url.Parse(in)
			pr := &httputil.ProxyRequest{In: &http.Request{URL: want}, Out: &http.Request{URL: want}}
			pr.SetURL(tu)
			got, _ := url.Parse(in)
			rewriteURL(got, tu)
			if got.String() != pr.Out.URL.String() || got.RawPath != pr.Out.URL.RawPath {
				t.Errorf("%s + %s = %s (raw %q), ReverseProxy: %s (raw %q)", target, in, got, got.RawPath, pr.Out.URL, pr.Out.URL.RawPath)
			}
		}
	}
}

// Query strings that the proxy and the API server could parse differently (';', bad escapes)
// are re-encoded without the unparsable parameters, as ReverseProxy does.
func TestCleanQueryDropsUnparsableParameters(t *testing.T) {
	for in, want := range map[string]string{
		"limit=1&watch=false":    "limit=1&watch=false",
		"a=%20b":                 "a=%20b",
		"watch=false;watch=true": "",
		"a=1&b=%zz":              "a=1",
		"a=1&b=%2":               "a=1",
		"":                       "",
	} {
		if got := cleanQuery(in); got != want {
			t.Errorf("cleanQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

// Plain requests keep response trailers (announced and not) and never pass on hop-by-hop
// response headers, including those the upstream's Connection header names.
func TestPlainRequestsKeepTrailersAndDropHopByHopResponseHeaders(t *testing.T) {
	up := newUpstream(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"kind":"Status"}`)
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})
	cfg, _ := upstreamConfig(t, up, "tok")
	proxy := serveHandler(t, newTestHandler(t, Config{Upstream: cfg}))
	resp := identityGet(t, proxy, "/api/v1/namespaces/default/configmaps/cm", testUserARN)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != `{"kind":"Status"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp.Header.Get("X-Hop") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response headers passed on: %v", resp.Header)
	}
	if resp.Trailer.Get("X-Checksum") != "abc" || resp.Trailer.Get("X-Late") != "late" {
		t.Errorf("trailers %v", resp.Trailer)
	}
}
