package impersonation_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"

	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/impersonation"
)

// whoAmI stands in for the API server: it reports who it was asked to act as.
func whoAmI() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "auth=%q user=%q arn=%q session=%q group=%q",
			r.Header.Get("Authorization"), r.Header.Get("Impersonate-User"),
			r.Header.Get("Impersonate-Extra-Arn"), r.Header.Get("Impersonate-Extra-Sessionname"),
			r.Header.Get("Impersonate-Group"))
	}))
}

// Embed the RoundTripper in your own proxy: decide who the caller is, put it in the request
// context, and let the RoundTripper strip what the client sent and set the Impersonate-* headers.
func ExampleRoundTripper() {
	api := whoAmI()
	defer api.Close()

	// The proxy's own identity. In a pod: rest.InClusterConfig() (token and CA files are then
	// reloaded in the background).
	upstream, err := impersonation.NewTransport(&rest.Config{Host: api.URL, BearerToken: "proxy-token"}, impersonation.TransportOptions{})
	if err != nil {
		panic(err)
	}
	defer upstream.Close()
	target, _ := url.Parse(api.URL)
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport:     impersonation.NewRoundTripper(upstream, "X-Caller"),
		FlushInterval: -1,
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Your authentication goes here (an mTLS certificate, an OIDC token, ...).
		p, err := impersonation.ParseARN(r.Header.Get("X-Caller"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		// ExtrasMapper also sends the ARN and session name as user extras (this needs impersonate
		// on userextras/* RBAC); DefaultMapper sends Impersonate-User only, as the EKS Connector.
		id, _ := impersonation.ExtrasMapper(p)
		proxy.ServeHTTP(w, r.WithContext(impersonation.WithIdentity(r.Context(), id)))
	}))
	defer front.Close()

	req, _ := http.NewRequest(http.MethodGet, front.URL+"/api/v1/namespaces", nil)
	req.Header.Set("X-Caller", "arn:aws:sts::123456789012:assumed-role/Admin/alice")
	req.Header.Set("Impersonate-Group", "system:masters") // a spoof attempt: removed
	req.Header.Set("Authorization", "Bearer stolen")      // removed too
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output:
	// auth="Bearer proxy-token" user="arn:aws:sts::123456789012:assumed-role/Admin/alice" arn="arn:aws:sts::123456789012:assumed-role/Admin/alice" session="alice" group=""
}

// The connector's proxy in a few lines: the identity comes from x-aws-eks-identity-arn, and a
// request without one never reaches the API server.
func ExampleNewHandler() {
	api := whoAmI()
	defer api.Close()

	h, err := impersonation.NewHandler(impersonation.Config{
		Upstream: &rest.Config{Host: api.URL, BearerToken: "proxy-token"},
	})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	proxy := httptest.NewServer(h)
	defer proxy.Close()

	for _, arn := range []string{"arn:aws:iam::123456789012:user/bob", "", "system:masters"} {
		req, _ := http.NewRequest(http.MethodGet, proxy.URL+"/api/v1/namespaces", nil)
		if arn != "" {
			req.Header.Set(impersonation.DefaultIdentityHeader, arn)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			fmt.Println(resp.StatusCode, string(body))
		} else {
			fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	// Output:
	// 200 auth="Bearer proxy-token" user="arn:aws:iam::123456789012:user/bob" arn="" session="" group=""
	// 401 application/json
	// 403 application/json
}

func ExampleParseARN() {
	p, err := impersonation.ParseARN("arn:aws-cn:sts::123456789012:assumed-role/Deployer/ci-run-42")
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Kind, p.CanonicalARN, p.SessionName)
	_, err = impersonation.ParseARN("system:masters")
	fmt.Println(err)
	// Output:
	// assumed-role arn:aws-cn:iam::123456789012:role/Deployer ci-run-42
	// impersonation: reserved identity: "system:masters" is a Kubernetes system name, not an IAM ARN
}
