package eksauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"
	clientauthv1beta1 "k8s.io/client-go/pkg/apis/clientauthentication/v1beta1"
	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/eksauth"
)

// fakeClock is a settable clock shared by the token generator and the fake API server.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock    { c := &fakeClock{}; c.ns.Store(t.UnixNano()); return c }
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// tokenCheckingAPIServer accepts a bearer token only while ParseToken (on the fake clock) accepts
// it, like an EKS authenticator, and serves an empty pod list.
type tokenCheckingAPIServer struct {
	*httptest.Server
	clock   *fakeClock
	mu      sync.Mutex
	seen    map[string]int
	revoked map[string]bool
	onAuth  func(token string)
}

func newTokenCheckingAPIServer(t *testing.T, clock *fakeClock) *tokenCheckingAPIServer {
	s := &tokenCheckingAPIServer{clock: clock, seen: map[string]int{}, revoked: map[string]bool{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		s.seen[tok]++
		revoked := s.revoked[tok]
		onAuth := s.onAuth
		s.mu.Unlock()
		if onAuth != nil {
			onAuth(tok)
		}
		_, err := eksauth.ParseToken(tok, eksauth.ValidateOptions{Partition: "aws", Now: clock.Now})
		if err != nil || revoked {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}`))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *tokenCheckingAPIServer) distinctTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *tokenCheckingAPIServer) restConfig(src *eksauth.TokenSource) *rest.Config {
	cfg := &rest.Config{Host: s.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, BearerToken: "stale-static-token"}
	eksauth.ConfigureREST(cfg, src)
	return cfg
}

func TestRESTConfigSurvivesTokenExpiry(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	srv := newTokenCheckingAPIServer(t, clock)
	gen := generator(t, "us-west-2", staticCreds(aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", SessionToken: "t"}), eksauth.TokenOptions{Now: clock.Now})
	src := eksauth.NewTokenSource(gen, "prod", eksauth.TokenSourceOptions{})
	client, err := kubernetes.NewForConfig(srv.restConfig(src))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		advance    time.Duration
		wantTokens int
	}{
		{0, 1},
		{10 * time.Minute, 1}, // still inside the refresh margin: same token
		{3 * time.Minute, 2},  // +13m: within a minute of the 14m expiration: refreshed
		{3 * time.Minute, 2},  // +16m: the first token is dead; the second is 3 minutes old
		{12 * time.Minute, 3}, // +28m: refreshed again
		{time.Hour, 4},        // long idle: refreshed on use
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		if _, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := srv.distinctTokens(); got != st.wantTokens {
			t.Fatalf("step %d: the server saw %d tokens, want %d", i, got, st.wantTokens)
		}
	}
}

func TestTransportResetsAndRetriesOn401(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	srv := newTokenCheckingAPIServer(t, clock)
	gen := generator(t, "us-west-2", staticCreds(aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s"}), eksauth.TokenOptions{Now: clock.Now})
	reg := prometheus.NewRegistry()
	src := eksauth.NewTokenSource(gen, "prod", eksauth.TokenSourceOptions{Registerer: reg})
	first, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The server stops accepting the cached token (as if the role's sessions were revoked).
	srv.mu.Lock()
	srv.revoked[first.Value] = true
	srv.onAuth = func(string) { clock.Advance(time.Second) }
	srv.mu.Unlock()
	client, err := kubernetes.NewForConfig(srv.restConfig(src))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatalf("the request was not retried with a new token: %v", err)
	}
	srv.mu.Lock()
	firstSeen := srv.seen[first.Value]
	srv.mu.Unlock()
	if firstSeen != 1 || srv.distinctTokens() != 2 {
		t.Fatalf("seen = %d distinct, first %d times", srv.distinctTokens(), firstSeen)
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	if got["ekslink_eksauth_token_refreshes_total,cluster=prod,result=ok"] != 2 || got["ekslink_eksauth_token_unauthorized_total,cluster=prod"] != 1 {
		t.Errorf("metrics = %v", got)
	}
	// A second source for the same cluster on the same registry shares the counters.
	_ = eksauth.NewTokenSource(gen, "prod", eksauth.TokenSourceOptions{Registerer: reg})
}

func TestTokenSourceSharesOneRefresh(t *testing.T) {
	var calls atomic.Int64
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		calls.Add(1)
		return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s"}, nil
	})
	gen := generator(t, "eu-west-1", creds, eksauth.TokenOptions{})
	src := eksauth.NewTokenSource(gen, "c", eksauth.TokenSourceOptions{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := src.Token(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("credentials retrieved %d times, want 1", calls.Load())
	}
	ot, err := src.OAuth2(context.Background()).Token()
	if err != nil || ot.TokenType != "Bearer" || !strings.HasPrefix(ot.AccessToken, eksauth.TokenPrefix) {
		t.Fatalf("oauth2 token %+v, %v", ot, err)
	}
}

func TestExecCredentialHonoursExecInfo(t *testing.T) {
	cases := []struct {
		name, env, want string
		err             bool
	}{
		{"no exec info: v1beta1 for old clients", "", eksauth.ExecCredentialV1beta1, false},
		{"v1 requested", `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}`, eksauth.ExecCredentialV1, false},
		{"v1beta1 requested", `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{}}`, eksauth.ExecCredentialV1beta1, false},
		{"removed v1alpha1 is refused", `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1alpha1"}`, "", true},
		{"garbage is refused", `{`, "", true},
	}
	tok := eksauth.Token{Value: "k8s-aws-v1.abc", Expiration: time.Date(2026, 11, 23, 12, 14, 0, 0, time.UTC)}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := eksauth.ExecCredentialVersion(func(k string) string {
				if k == eksauth.ExecInfoEnv {
					return tc.env
				}
				return ""
			})
			if tc.err {
				if !errors.Is(err, eksauth.ErrExecInfo) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || v != tc.want {
				t.Fatalf("version %q, %v", v, err)
			}
			out, err := eksauth.ExecCredential(tok, v)
			if err != nil {
				t.Fatal(err)
			}
			// Decode with client-go's own types.
			var token string
			var exp *metav1.Time
			if v == eksauth.ExecCredentialV1 {
				var ec clientauthv1.ExecCredential
				if err := json.Unmarshal(out, &ec); err != nil || ec.Status == nil || ec.APIVersion != v {
					t.Fatalf("%s: %v", out, err)
				}
				token, exp = ec.Status.Token, ec.Status.ExpirationTimestamp
			} else {
				var ec clientauthv1beta1.ExecCredential
				if err := json.Unmarshal(out, &ec); err != nil || ec.Status == nil || ec.APIVersion != v {
					t.Fatalf("%s: %v", out, err)
				}
				token, exp = ec.Status.Token, ec.Status.ExpirationTimestamp
			}
			if token != tok.Value || exp == nil || !exp.Time.Equal(tok.Expiration) || !strings.Contains(string(out), `"kind":"ExecCredential"`) {
				t.Fatalf("decoded %q %v from %s", token, exp, out)
			}
		})
	}
}

func BenchmarkTransportCachedToken(b *testing.B) {
	gen := generator(b, "eu-west-1", staticCreds(aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s"}), eksauth.TokenOptions{})
	src := eksauth.NewTokenSource(gen, "c", eksauth.TokenSourceOptions{})
	rt := eksauth.NewTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	}), src)
	req, _ := http.NewRequest(http.MethodGet, "https://example.com/api", nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rt.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// closeTracker is a request body that records Close.
type closeTracker struct {
	*strings.Reader
	closed atomic.Int32
}

func (c *closeTracker) Close() error { c.closed.Add(1); return nil }

// A RoundTripper must close the request body even when it fails (net/http's contract); the
// transport fails before sending anything when no token can be made.
func TestTransportClosesTheBodyWhenNoTokenCanBeMade(t *testing.T) {
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no credentials")
	})
	src := eksauth.NewTokenSource(generator(t, "eu-west-1", creds, eksauth.TokenOptions{}), "c", eksauth.TokenSourceOptions{})
	sent := false
	rt := eksauth.NewTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = true
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	}), src)
	body := &closeTracker{Reader: strings.NewReader(`{"kind":"Pod"}`)}
	req, _ := http.NewRequest(http.MethodPost, "https://example.com/api/v1/namespaces/default/pods", body)
	if _, err := rt.RoundTrip(req); err == nil || sent {
		t.Fatalf("RoundTrip without a token: err %v, sent %v", err, sent)
	}
	if body.closed.Load() == 0 {
		t.Fatal("the request body was not closed")
	}
}

// On a 401 the transport resets the token and, when the body can be replayed (GetBody), resends
// the request once with a fresh token and the full body; a body that cannot be replayed is never
// resent and the 401 is returned.
func TestTransportReplaysOnlyReplayableBodiesAfter401(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	gen := generator(t, "eu-west-1", staticCreds(aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s"}), eksauth.TokenOptions{Now: clock.Now})
	for _, replayable := range []bool{true, false} {
		src := eksauth.NewTokenSource(gen, "c", eksauth.TokenSourceOptions{})
		var bodies []string
		var auths []string
		rt := eksauth.NewTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			bodies, auths = append(bodies, string(b)), append(auths, r.Header.Get("Authorization"))
			clock.Advance(time.Second) // the next token differs
			status := http.StatusOK
			if len(bodies) == 1 {
				status = http.StatusUnauthorized
			}
			return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
		}), src)
		const payload = `{"kind":"ConfigMap"}`
		var req *http.Request
		if replayable {
			req, _ = http.NewRequest(http.MethodPost, "https://example.com/api", strings.NewReader(payload))
		} else {
			req, _ = http.NewRequest(http.MethodPost, "https://example.com/api", io.NopCloser(strings.NewReader(payload)))
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if replayable {
			if resp.StatusCode != 200 || len(bodies) != 2 || bodies[1] != payload || auths[0] == auths[1] {
				t.Fatalf("replayable: status %d, bodies %q, same token %v", resp.StatusCode, bodies, auths[0] == auths[1])
			}
		} else if resp.StatusCode != 401 || len(bodies) != 1 {
			t.Fatalf("non-replayable: status %d, %d sends", resp.StatusCode, len(bodies))
		}
		if req.Header.Get("Authorization") != "" {
			t.Fatal("the caller's request was modified")
		}
	}
}
