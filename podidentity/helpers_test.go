package podidentity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ekslink/ekslink/envtest/awstest"
)

// fakeClock is the agent's expiry clock in tests; timers stay real, the scheduler is poked.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// upstream is a local EKS Auth endpoint (SigV4-verified by awstest) whose behaviour tests switch.
type upstream struct {
	*awstest.Server
	mode     atomic.Value // string: "ok", "unavailable", "hang", "throttle", "throttle-long", "denied", "notfound", "invalid", "expired", "stale"
	calls    atomic.Int64
	lifetime atomic.Int64 // credential lifetime in ns
	now      func() time.Time
	gate     chan struct{} // when non-nil, "ok" answers wait for it to be closed
	attempts int           // client attempts per call (default 2)
	hangDone chan struct{}
}

func newUpstream(t testing.TB, now func() time.Time) *upstream {
	u := &upstream{Server: awstest.New(t, awstest.Options{Service: "eks-auth", Protocol: awstest.RESTJSON}), now: now, hangDone: make(chan struct{})}
	t.Cleanup(func() { close(u.hangDone) })
	u.mode.Store("ok")
	u.lifetime.Store(int64(6 * time.Hour))
	u.Handle("POST /clusters/{name}/assume-role-for-pod-identity", u.serve)
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	n := u.calls.Add(1)
	var body struct {
		Token string `json:"token"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	if strings.HasSuffix(body.Token, forgedSignature) {
		// EKS Auth verifies the signature: a forged token is refused whatever its claims say.
		awstest.WriteRESTJSONError(w, 400, "InvalidTokenException", "signature verification failed")
		return
	}
	lifetime := time.Duration(u.lifetime.Load())
	switch u.mode.Load().(string) {
	case "unavailable":
		awstest.WriteRESTJSONError(w, 503, "ServiceUnavailableException", "down")
		return
	case "hang":
		select {
		case <-r.Context().Done():
		case <-u.hangDone:
		}
		panic(http.ErrAbortHandler) // a hung server never answers
	case "throttle":
		w.Header().Set("Retry-After", "2")
		awstest.WriteRESTJSONError(w, 429, "ThrottlingException", "slow down")
		return
	case "throttle-long":
		w.Header().Set("Retry-After", "100000")
		awstest.WriteRESTJSONError(w, 429, "ThrottlingException", "slow down")
		return
	case "expired":
		lifetime = -time.Minute // credentials that expired before they arrived
	case "stale":
		lifetime = time.Minute // valid, but inside the agent's serve skew (2m)
	case "denied":
		awstest.WriteRESTJSONError(w, 400, "AccessDeniedException", "no")
		return
	case "notfound":
		awstest.WriteRESTJSONError(w, 404, "ResourceNotFoundException", "no association")
		return
	case "invalid":
		awstest.WriteRESTJSONError(w, 400, "InvalidTokenException", "bad token")
		return
	}
	if u.gate != nil {
		<-u.gate
	}
	exp := u.now().Add(lifetime)
	awstest.WriteJSON(w, "", map[string]any{
		"subject":                map[string]string{"namespace": "default", "serviceAccount": "app"},
		"audience":               "pods.eks.amazonaws.com",
		"podIdentityAssociation": map[string]string{"associationArn": "arn:aws:eks:us-west-2:111122223333:podidentityassociation/c1/a-1", "associationId": "a-1"},
		"assumedRoleUser":        map[string]string{"arn": "arn:aws:sts::111122223333:assumed-role/app/eks-c1-app", "assumeRoleId": "AROA:eks"},
		"credentials": map[string]any{
			"accessKeyId": fmt.Sprintf("ASIA%016d", n), "secretAccessKey": "secret-" + body.Token[len(body.Token)-4:], "sessionToken": "session",
			"expiration": exp.Unix(),
		},
	})
}

func (u *upstream) client(t testing.TB, attemptTimeout time.Duration) *Client {
	t.Helper()
	c, err := NewFromConfig(u.Config(), withoutEnv, func(o *Options) {
		o.AttemptTimeout = attemptTimeout
		o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = max(u.attempts, 2)
			if u.attempts == 1 {
				o.MaxAttempts = 1
			}
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var tokenSeq atomic.Int64

// makeToken builds a structurally valid JWT (unsigned garbage signature: EKS Auth is emulated).
func makeToken(exp time.Time, extra map[string]any) string {
	claims := map[string]any{"exp": exp.Unix(), "sub": fmt.Sprintf("system:serviceaccount:default:app-%d", tokenSeq.Add(1)), "aud": []string{"pods.eks.amazonaws.com"}}
	for k, v := range extra {
		claims[k] = v
	}
	p, _ := json.Marshal(claims)
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"k1"}`))
	return h + "." + base64.RawURLEncoding.EncodeToString(p) + "." + base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("sig%04d", tokenSeq.Load())))
}

// forgedSignature ends the tokens of makeForgedToken: base64url("forged").
var forgedSignature = "." + base64.RawURLEncoding.EncodeToString([]byte("forged"))

// makeForgedToken is a JWT-shaped token with any claims and a signature EKS Auth refuses, as an
// attacker on the node can mint without limit.
func makeForgedToken(exp time.Time, extra map[string]any) string {
	claims := map[string]any{"jti": fmt.Sprintf("forged-%d", tokenSeq.Add(1))} // every token distinct
	for k, v := range extra {
		claims[k] = v
	}
	t := makeToken(exp, claims)
	return t[:strings.LastIndexByte(t, '.')] + forgedSignature
}

// podClaims are the private claims of a projected service account token as the API server writes
// them (kubernetes pkg/serviceaccount/claims.go: "kubernetes.io" with namespace, serviceaccount, pod).
func podClaims(namespace, serviceAccount, pod string) map[string]any {
	return map[string]any{
		"sub": "system:serviceaccount:" + namespace + ":" + serviceAccount,
		"kubernetes.io": map[string]any{
			"namespace":      namespace,
			"serviceaccount": map[string]string{"name": serviceAccount, "uid": "5e1c0a2e-0000-4000-8000-" + fmt.Sprintf("%012x", len(serviceAccount))},
			"pod":            map[string]string{"name": pod, "uid": "9a7b3c1d-0000-4000-8000-" + fmt.Sprintf("%012x", len(pod))},
		},
	}
}

// clientFrom is an HTTP client whose connections come from ip, as a pod's come from its own
// address; on Linux every 127.0.0.0/8 address is local, so tests use several loopback peers.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 256}}
}

// agent is a Server on loopback for tests.
type agent struct {
	*Server
	url string
	reg *prometheus.Registry
}

func startAgent(t testing.TB, up Upstream, opts ServerOptions) *agent {
	t.Helper()
	reg := prometheus.NewRegistry()
	if opts.ClusterName == "" {
		opts.ClusterName = "c1"
	}
	opts.Registerer = reg
	s, err := NewServer(up, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; s.Close() })
	return &agent{Server: s, url: "http://" + ln.Addr().String() + CredentialsPath, reg: reg}
}

type answer struct {
	status int
	header http.Header
	body   map[string]string
	raw    string
}

func (a *agent) get(t testing.TB, token string) answer {
	t.Helper()
	return a.do(t, context.Background(), http.MethodGet, a.url, token, "")
}

func (a *agent) do(t testing.TB, ctx context.Context, method, url, token, host string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{status: -1, raw: err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]string
	_ = json.Unmarshal(raw, &body)
	return answer{status: resp.StatusCode, header: resp.Header, body: body, raw: string(raw)}
}

// poke makes the scheduler look at the heap again after the fake clock moved.
func (a *agent) poke() {
	select {
	case a.cache.wake <- struct{}{}:
	default:
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue sums the samples of a metric whose labels include want.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m, want) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func mustContain(t testing.TB, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%q does not contain %q", s, sub)
	}
}

// fetchOnce is one SDK-like credential request; the body is read fully so connections are reused.
func fetchOnce(client *http.Client, url, token string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
