package envtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/impersonation"
)

// What a program embedding impersonation.Handler tests, from outside the module: its proxy against
// a real API server with real RBAC. The proxy's service account may impersonate one ARN (the
// resourceNames form of the RBAC AWS documents for the EKS Connector), and that ARN may list pods
// in one namespace. The API server itself reports who the request was served as.
func TestEmbedderTestsAnImpersonationProxyAgainstARealAPIServer(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	const reader = "arn:aws:iam::111122223333:role/console-reader"
	env.CreateServiceAccount(t, ns, "proxy")
	env.Grant(t, "", "embedder-impersonate-"+ns, envtest.ServiceAccountSubject(ns, "proxy"), []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: []string{reader}},
	})
	env.Grant(t, ns, "read-pods", envtest.UserSubject(reader), []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}},
	})

	h, err := impersonation.NewHandler(impersonation.Config{Upstream: env.ConfigForToken(env.Token(t, ns, "proxy", nil, time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	proxy := httptest.NewServer(h)
	t.Cleanup(proxy.Close)
	do := func(arn, method, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(envtest.Context(t), method, proxy.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if arn != "" {
			req.Header.Set(impersonation.DefaultIdentityHeader, arn)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}

	code, body := do(reader, http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews",
		`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`)
	var review authenticationv1.SelfSubjectReview
	if code != http.StatusCreated || json.Unmarshal(body, &review) != nil {
		t.Fatalf("SelfSubjectReview through the proxy: %d %s", code, body)
	}
	if u := review.Status.UserInfo; u.Username != reader || len(u.Extra) != 0 || strings.Contains(strings.Join(u.Groups, ","), "system:serviceaccount") {
		t.Fatalf("the API server served the request as %+v, want the user %s alone", u, reader)
	}
	if code, body := do(reader, http.MethodGet, "/api/v1/namespaces/"+ns+"/pods", ""); code != http.StatusOK {
		t.Errorf("listing pods as %s: %d %s, want 200 (granted)", reader, code, body)
	}
	if code, body := do(reader, http.MethodGet, "/api/v1/namespaces/"+ns+"/secrets", ""); code != http.StatusForbidden ||
		!strings.Contains(string(body), `User \"`+reader+`\" cannot list resource \"secrets\"`) {
		t.Errorf("listing secrets as %s: %d %s, want the API server's 403 for that user", reader, code, body)
	}
	const other = "arn:aws:iam::111122223333:role/not-granted"
	if code, body := do(other, http.MethodGet, "/api/v1/namespaces/"+ns+"/pods", ""); code != http.StatusForbidden ||
		!strings.Contains(string(body), "cannot impersonate resource \\\"users\\\"") {
		t.Errorf("as %s, whom the proxy may not impersonate: %d %s, want the API server's 403", other, code, body)
	}
	if code, body := do("", http.MethodGet, "/api/v1/namespaces/"+ns+"/pods", ""); code != http.StatusUnauthorized {
		t.Errorf("without an identity: %d %s, want 401 from the proxy", code, body)
	}
}
