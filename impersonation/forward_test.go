package impersonation

import (
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
