package eksauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"
	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/internal/promreg"
)

// DefaultRefreshBefore is how long before a token's Expiration a TokenSource replaces it.
const DefaultRefreshBefore = time.Minute

// TokenSource hands out a cached token for one cluster and replaces it RefreshBefore its
// expiration (or after Reset). Concurrent callers share one refresh. It is safe for concurrent use.
type TokenSource struct {
	gen           *TokenGenerator
	cluster       string
	refreshBefore time.Duration
	now           func() time.Time

	refreshes *prometheus.CounterVec
	resets    prometheus.Counter

	mu  sync.Mutex
	cur Token
}

// TokenSourceOptions tune a TokenSource.
type TokenSourceOptions struct {
	// RefreshBefore is the margin before Expiration at which a new token is made
	// (default DefaultRefreshBefore).
	RefreshBefore time.Duration
	// Registerer, when set, receives ekslink_eksauth_token_refreshes_total{cluster,result} and
	// ekslink_eksauth_token_unauthorized_total{cluster}. Sources for the same cluster share them.
	Registerer prometheus.Registerer
}

// NewTokenSource returns a refreshing source of tokens for the cluster. It uses the generator's clock.
func NewTokenSource(gen *TokenGenerator, cluster string, opts TokenSourceOptions) *TokenSource {
	rb := opts.RefreshBefore
	if rb <= 0 {
		rb = DefaultRefreshBefore
	}
	s := &TokenSource{gen: gen, cluster: cluster, refreshBefore: rb, now: gen.now}
	if opts.Registerer != nil {
		labels := prometheus.Labels{"cluster": cluster}
		s.refreshes = promreg.Adopt(opts.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ekslink_eksauth_token_refreshes_total", Help: "EKS tokens made by the refreshing token source, by result.", ConstLabels: labels,
		}, []string{"result"}))
		s.resets = promreg.Adopt(opts.Registerer, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ekslink_eksauth_token_unauthorized_total", Help: "401 answers that reset the cached EKS token.", ConstLabels: labels,
		}))
	}
	return s
}

// Token returns the cached token, or a new one when the cached one is within RefreshBefore of its
// expiration.
func (s *TokenSource) Token(ctx context.Context) (Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.Value != "" && s.now().Before(s.cur.Expiration.Add(-s.refreshBefore)) {
		return s.cur, nil
	}
	tok, err := s.gen.Token(ctx, s.cluster)
	if s.refreshes != nil {
		result := "ok"
		if err != nil {
			result = "error"
		}
		s.refreshes.WithLabelValues(result).Inc()
	}
	if err != nil {
		return Token{}, err
	}
	s.cur = tok
	return tok, nil
}

// Reset drops the cached token if it is still the given one (an empty value drops any), so the
// next Token call makes a new one. Call it when the API server answers 401.
func (s *TokenSource) Reset(value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if value == "" || s.cur.Value == value {
		s.cur = Token{}
	}
	if s.resets != nil {
		s.resets.Inc()
	}
}

// OAuth2 adapts the source to oauth2.TokenSource (token type Bearer); ctx bounds every refresh.
func (s *TokenSource) OAuth2(ctx context.Context) oauth2.TokenSource { return oauth2Source{ctx, s} }

type oauth2Source struct {
	ctx context.Context
	s   *TokenSource
}

func (o oauth2Source) Token() (*oauth2.Token, error) {
	t, err := o.s.Token(o.ctx)
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: t.Value, TokenType: "Bearer", Expiry: t.Expiration}, nil
}

// NewTransport returns a RoundTripper that authenticates every request with a token from src.
// A request that already has an Authorization header is sent as is. On 401 the token is reset and
// the request is retried once with a new token when its body can be replayed.
func NewTransport(base http.RoundTripper, src *TokenSource) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &tokenTransport{base: base, src: src}
}

type tokenTransport struct {
	base http.RoundTripper
	src  *TokenSource
}

// WrappedRoundTripper lets client-go utilities see the wrapped transport.
func (t *tokenTransport) WrappedRoundTripper() http.RoundTripper { return t.base }

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") != "" {
		return t.base.RoundTrip(req)
	}
	tok, err := t.src.Token(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper closes the body, also on errors
		}
		return nil, fmt.Errorf("eksauth: getting a token for %s: %w", req.URL.Host, err)
	}
	resp, err := t.base.RoundTrip(authorized(req, tok.Value))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	t.src.Reset(tok.Value)
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil // the body was consumed and cannot be replayed
	}
	tok2, err := t.src.Token(req.Context())
	if err != nil || tok2.Value == tok.Value {
		return resp, nil // the original 401 is the more useful answer
	}
	body, ok := replayBody(req)
	if !ok {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	retry := authorized(req, tok2.Value)
	retry.Body = body
	return t.base.RoundTrip(retry)
}

func authorized(req *http.Request, token string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// replayBody returns a fresh body for a retry, or false when the body cannot be replayed.
func replayBody(req *http.Request) (io.ReadCloser, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	b, err := req.GetBody()
	return b, err == nil
}

// ConfigureREST makes cfg authenticate with src: it clears static credentials and exec plugins and
// wraps the transport with NewTransport (keeping any existing WrapTransport).
func ConfigureREST(cfg *rest.Config, src *TokenSource) {
	cfg.BearerToken, cfg.BearerTokenFile, cfg.Username, cfg.Password = "", "", "", ""
	cfg.ExecProvider, cfg.AuthProvider = nil, nil
	prev := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if prev != nil {
			rt = prev(rt)
		}
		return NewTransport(rt, src)
	}
}

// Exec credential API versions.
const (
	ExecCredentialV1      = "client.authentication.k8s.io/v1"
	ExecCredentialV1beta1 = "client.authentication.k8s.io/v1beta1"
	// ExecInfoEnv is the variable kubectl sets with the ExecCredential request.
	ExecInfoEnv = "KUBERNETES_EXEC_INFO"
)

// ErrExecInfo is returned for a KUBERNETES_EXEC_INFO this plugin cannot answer.
var ErrExecInfo = errors.New("eksauth: unsupported " + ExecInfoEnv)

// ExecCredentialVersion returns the apiVersion to answer with: the one in KUBERNETES_EXEC_INFO
// (read with getenv; nil means os.Getenv), v1beta1 when the variable is unset (older clients).
func ExecCredentialVersion(getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	info := getenv(ExecInfoEnv)
	if info == "" {
		return ExecCredentialV1beta1, nil
	}
	var req struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal([]byte(info), &req); err != nil {
		return "", fmt.Errorf("%w: %v", ErrExecInfo, err)
	}
	if req.Kind != "" && req.Kind != "ExecCredential" {
		return "", fmt.Errorf("%w: kind %q", ErrExecInfo, req.Kind)
	}
	switch req.APIVersion {
	case ExecCredentialV1, ExecCredentialV1beta1:
		return req.APIVersion, nil
	default:
		return "", fmt.Errorf("%w: apiVersion %q (supported: %s, %s)", ErrExecInfo, req.APIVersion, ExecCredentialV1, ExecCredentialV1beta1)
	}
}

// ExecCredential renders tok as the JSON an exec credential plugin prints.
func ExecCredential(tok Token, apiVersion string) ([]byte, error) {
	if apiVersion != ExecCredentialV1 && apiVersion != ExecCredentialV1beta1 {
		return nil, fmt.Errorf("%w: apiVersion %q", ErrExecInfo, apiVersion)
	}
	out := map[string]any{
		"kind":       "ExecCredential",
		"apiVersion": apiVersion,
		"spec":       map[string]any{},
		"status": map[string]any{
			"expirationTimestamp": tok.Expiration.UTC().Format(time.RFC3339),
			"token":               tok.Value,
		},
	}
	return json.Marshal(out)
}
