package podidentity

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
)

// Agent addresses the AWS SDKs allow for container credentials besides loopback.
const (
	// AgentIPv4 is the EKS Pod Identity agent's IPv4 address.
	AgentIPv4 = "169.254.170.23"
	// AgentIPv6 is the EKS Pod Identity agent's IPv6 address.
	AgentIPv6 = "fd00:ec2::23"
	// CredentialsPath is the only path the agent serves.
	CredentialsPath = "/v1/credentials"
)

// Defaults of ServerOptions.
const (
	// DefaultMaxTokenBytes bounds the Authorization header.
	DefaultMaxTokenBytes = 16 << 10
	// DefaultCacheSize is the number of tokens cached (a node runs at most a few hundred pods).
	DefaultCacheSize = 4096
	// DefaultServeSkew: cached credentials are not served in their last two minutes.
	DefaultServeSkew = 2 * time.Minute
	// DefaultRefreshBefore: refresh an hour before expiry (EKS Auth credentials last six hours).
	DefaultRefreshBefore = time.Hour
	// DefaultIdleTimeout: tokens not presented for a credential lifetime stop being refreshed.
	DefaultIdleTimeout = 6 * time.Hour
	// DefaultRefreshWorkers is the size of the refresh worker pool.
	DefaultRefreshWorkers = 4
	// DefaultUpstreamTimeout bounds one exchange with EKS Auth including retries.
	DefaultUpstreamTimeout = 5 * time.Second
	// DefaultThrottleTTL is how long a throttled token is answered 429 without asking again.
	DefaultThrottleTTL = time.Second
	// DefaultRefusalTTL is how long a refused token is answered from the cache.
	DefaultRefusalTTL = 5 * time.Second
	// DefaultRate is the node's EKS Auth call rate per second.
	DefaultRate = 20
	// DefaultBurst is the node's EKS Auth call burst.
	DefaultBurst = 40
	// DefaultSourceRate is the rate of new-token EKS Auth calls one source (pod address) may cause.
	DefaultSourceRate = 1
	// DefaultSourceBurst is the burst of new-token EKS Auth calls one source may cause (enough for
	// the host-network pods of a node, which share the node's address, starting together).
	DefaultSourceBurst = 10
	// DefaultMissWait is how long a miss waits for the rate budget.
	DefaultMissWait = time.Second
	// DefaultUnhealthyAfter is the number of failed upstream calls in a row that fails readiness.
	DefaultUnhealthyAfter = 3
)

// Upstream exchanges a service account token for credentials; *Client implements it.
type Upstream interface {
	AssumeRoleForPodIdentity(ctx context.Context, clusterName, token string) (*AssumeRoleForPodIdentityOutput, error)
}

// UpstreamNamer is implemented by an Upstream that is not EKS Auth (the web identity backend
// calls STS): the server names it in the answers it writes itself, a timeout or an unreachable
// upstream, so that a pod's SDK error says which service did not answer.
type UpstreamNamer interface {
	UpstreamName() string
}

// ServerOptions configure a Server. ClusterName is required; every other zero value means the
// documented default. The upstream, the one dependency a Server cannot work without, is an
// argument of NewServer.
type ServerOptions struct {
	// ClusterName is the EKS cluster the tokens belong to.
	ClusterName string
	// Hosts are the accepted Host header hosts (default AgentIPv4 and AgentIPv6). The IP of every
	// listener given to Serve is accepted as well. Anything else is refused, which defeats DNS rebinding.
	Hosts []string
	// MaxTokenBytes bounds the Authorization header (default DefaultMaxTokenBytes).
	MaxTokenBytes int
	// CacheSize bounds the number of cached tokens (default DefaultCacheSize); the least recently
	// used entry is dropped first.
	CacheSize int
	// ServeSkew: cached credentials are served only while they are valid for longer than this
	// (default DefaultServeSkew). During an upstream outage this is how long before expiry the agent
	// stops answering from the cache.
	ServeSkew time.Duration
	// RefreshBefore: credentials are refreshed in the background this long before they expire (never
	// earlier than half their lifetime; jittered) (default DefaultRefreshBefore). It must be longer
	// than ServeSkew. Negative durations and counts are refused by NewServer (except RefusalTTL).
	RefreshBefore time.Duration
	// MaxRetention, when positive, renews credentials at the latest this long after they were
	// fetched, even when RefreshBefore would renew them later (the upstream agent's
	// --max-credential-retention-before-renewal; 0: RefreshBefore alone decides).
	MaxRetention time.Duration
	// IdleTimeout: an entry whose token has not been presented for this long is not refreshed any more;
	// it lapses and is dropped when its credentials stop being servable (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// RefreshWorkers is the number of background refresh workers (default DefaultRefreshWorkers).
	RefreshWorkers int
	// UpstreamTimeout bounds one fetch including the client's retries (default DefaultUpstreamTimeout).
	// Fetches are detached from the requests that caused them: a client hanging up does not cancel them.
	UpstreamTimeout time.Duration
	// ThrottleTTL is how long an upstream throttle answer is cached for a token (default
	// DefaultThrottleTTL, or the Retry-After hint when longer, at most 30s).
	ThrottleTTL time.Duration
	// RefusalTTL is how long a definitive refusal from EKS Auth (invalid token, access denied, no
	// association) is repeated for the same token without asking again, so that a misconfigured pod
	// retrying in a loop cannot spend the node's budget (default DefaultRefusalTTL; negative: off).
	RefusalTTL time.Duration
	// Rate is the outbound budget of upstream calls per second (default DefaultRate).
	Rate float64
	// Burst is the budget's burst (default DefaultBurst). Background refreshes with time to spare
	// only spend it while more than half the burst is left, so cache misses win.
	Burst int
	// ReservedBurst is the part of Burst that misses for new tokens never spend: it stays available
	// for tokens EKS Auth accepted before (a pod whose cached credentials ran out) and for refreshes
	// of cached credentials that are about to stop being served (less than RefreshBefore/2 left),
	// so a flood of new tokens cannot make cached credentials lapse (default Burst/4 rounded up; it
	// must be smaller than Burst).
	ReservedBurst int
	// SourceRate is the rate per second of upstream calls for new tokens that one source may cause
	// (default DefaultSourceRate). A source is the peer IP address of the connection: a pod's IP, or
	// the node's for host-network pods, which share it. Token claims are not used, because they are
	// not verified before EKS Auth checks the token: a client could name another pod in every
	// token. A source over its budget is answered 429 at once; cache hits and tokens EKS Auth
	// accepted before are not counted. In the node's budget, a source that has spent more of its own
	// leaves more for the others (up to half of what is above ReservedBurst), so a quiet pod's new
	// token goes before a busy pod's next one.
	SourceRate float64
	// SourceBurst is the burst of SourceRate (default DefaultSourceBurst).
	SourceBurst int
	// MissWait is how long a cache miss may wait for the rate budget before it is answered 429
	// (default DefaultMissWait).
	MissWait time.Duration
	// UnhealthyAfter is the number of consecutive upstream calls failing with unavailable or timeout
	// after which readiness fails (default DefaultUnhealthyAfter). Any upstream answer resets it.
	UnhealthyAfter int
	// Logger receives one line per meaningful event (default discard). Tokens are never logged, only
	// a short hash.
	Logger logr.Logger
	// Registerer receives the metrics; nil keeps them unregistered. Servers on one Registerer share
	// the collectors (their counts add up).
	Registerer prometheus.Registerer
	// Now is the clock used for expiry decisions (default time.Now).
	Now func() time.Time
}

// Server is the credential server: an http.Handler for GET /v1/credentials plus the cache shared by
// every listener it serves. Create it with NewServer, serve listeners with Serve, stop with Close.
type Server struct {
	opts     ServerOptions
	upstream Upstream
	// upstreamName names the upstream in answers that do not come from it (a timeout, a
	// transport error): "EKS Auth", or what the upstream's UpstreamName says.
	upstreamName string
	log          logr.Logger
	now          func() time.Time
	metrics      *metrics
	budget       *bucket
	sources      *sourceBudgets
	hosts        atomic.Pointer[map[string]struct{}]
	hostsMu      sync.Mutex

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	cache *cache

	consecutiveUnavailable atomic.Int64
	lastUpstreamErr        atomic.Pointer[string]
}

// NewServer validates the options, fills the defaults and starts the refresh scheduler and workers.
// upstream exchanges tokens for credentials: a *Client in production (see NewFromConfig).
func NewServer(upstream Upstream, opts ServerOptions) (*Server, error) {
	if opts.ClusterName == "" {
		return nil, fmt.Errorf("podidentity: no cluster name: set ServerOptions.ClusterName (--cluster-name)")
	}
	if upstream == nil {
		return nil, fmt.Errorf("podidentity: no upstream: pass the EKS Auth client (podidentity.NewFromConfig) to NewServer")
	}
	if len(opts.Hosts) == 0 {
		opts.Hosts = []string{AgentIPv4, AgentIPv6}
	}
	// Negative values would serve expired credentials (ServeSkew), fail every fetch at once
	// (UpstreamTimeout) or crash the cache (CacheSize, RefreshWorkers): refuse them.
	for _, o := range []struct {
		name string
		neg  bool
	}{
		{"MaxTokenBytes", opts.MaxTokenBytes < 0}, {"CacheSize", opts.CacheSize < 0}, {"ServeSkew", opts.ServeSkew < 0},
		{"RefreshBefore", opts.RefreshBefore < 0}, {"MaxRetention", opts.MaxRetention < 0}, {"IdleTimeout", opts.IdleTimeout < 0}, {"RefreshWorkers", opts.RefreshWorkers < 0},
		{"UpstreamTimeout", opts.UpstreamTimeout < 0}, {"ThrottleTTL", opts.ThrottleTTL < 0}, {"Rate", opts.Rate < 0},
		{"Burst", opts.Burst < 0}, {"MissWait", opts.MissWait < 0}, {"UnhealthyAfter", opts.UnhealthyAfter < 0},
		{"ReservedBurst", opts.ReservedBurst < 0}, {"SourceRate", opts.SourceRate < 0}, {"SourceBurst", opts.SourceBurst < 0},
	} {
		if o.neg {
			return nil, fmt.Errorf("podidentity: ServerOptions.%s must not be negative", o.name)
		}
	}
	opts.MaxTokenBytes = cmp.Or(opts.MaxTokenBytes, DefaultMaxTokenBytes)
	opts.CacheSize = cmp.Or(opts.CacheSize, DefaultCacheSize)
	opts.ServeSkew = cmp.Or(opts.ServeSkew, DefaultServeSkew)
	opts.RefreshBefore = cmp.Or(opts.RefreshBefore, DefaultRefreshBefore)
	opts.IdleTimeout = cmp.Or(opts.IdleTimeout, DefaultIdleTimeout)
	opts.RefreshWorkers = cmp.Or(opts.RefreshWorkers, DefaultRefreshWorkers)
	opts.UpstreamTimeout = cmp.Or(opts.UpstreamTimeout, DefaultUpstreamTimeout)
	opts.ThrottleTTL = cmp.Or(opts.ThrottleTTL, DefaultThrottleTTL)
	opts.RefusalTTL = cmp.Or(opts.RefusalTTL, DefaultRefusalTTL)
	opts.Rate = cmp.Or(opts.Rate, DefaultRate)
	opts.Burst = cmp.Or(opts.Burst, DefaultBurst)
	opts.MissWait = cmp.Or(opts.MissWait, DefaultMissWait)
	opts.ReservedBurst = cmp.Or(opts.ReservedBurst, min((opts.Burst+3)/4, opts.Burst-1))
	opts.SourceRate = cmp.Or(opts.SourceRate, DefaultSourceRate)
	opts.SourceBurst = cmp.Or(opts.SourceBurst, DefaultSourceBurst)
	opts.UnhealthyAfter = cmp.Or(opts.UnhealthyAfter, DefaultUnhealthyAfter)
	if opts.RefreshBefore <= opts.ServeSkew {
		return nil, fmt.Errorf("podidentity: ServerOptions.RefreshBefore (%s) must be longer than ServeSkew (%s), or credentials are never refreshed ahead", opts.RefreshBefore, opts.ServeSkew)
	}
	if opts.ReservedBurst >= opts.Burst {
		return nil, fmt.Errorf("podidentity: ServerOptions.ReservedBurst (%d) must be smaller than Burst (%d), or no new token is ever exchanged", opts.ReservedBurst, opts.Burst)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	s := &Server{opts: opts, upstream: upstream, log: opts.Logger, now: opts.Now, budget: newBucket(opts.Rate, opts.Burst, time.Now()), sources: newSourceBudgets(opts.SourceRate, opts.SourceBurst)}
	s.upstreamName = "EKS Auth"
	if n, ok := upstream.(UpstreamNamer); ok && n.UpstreamName() != "" {
		s.upstreamName = n.UpstreamName()
	}
	s.metrics = newMetrics(opts.Registerer)
	s.cache = newCache(s)
	hosts := map[string]struct{}{}
	for _, h := range opts.Hosts {
		hosts[normalizeHost(h)] = struct{}{}
	}
	s.hosts.Store(&hosts)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cache.start()
	return s, nil
}

// Close stops background refreshes and cancels in-flight upstream calls. Serve calls return when
// their own contexts end.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

// AllowHost adds a Host header host (an IP or name, with or without port) to the accepted set.
func (s *Server) AllowHost(host string) {
	s.hostsMu.Lock()
	defer s.hostsMu.Unlock()
	old := *s.hosts.Load()
	next := make(map[string]struct{}, len(old)+1)
	for k := range old {
		next[k] = struct{}{}
	}
	next[normalizeHost(host)] = struct{}{}
	s.hosts.Store(&next)
}

func normalizeHost(h string) string {
	h = strings.TrimSpace(strings.ToLower(h))
	if strings.HasPrefix(h, "[") {
		i := strings.IndexByte(h, ']')
		if i < 0 || (i < len(h)-1 && h[i+1] != ':') {
			return h // malformed: matches nothing
		}
		h = h[1:i]
	} else if strings.Count(h, ":") == 1 {
		h = h[:strings.IndexByte(h, ':')]
	}
	// One spelling per IP address: [FD00:EC2:0::23] is [fd00:ec2::23].
	if a, err := netip.ParseAddr(h); err == nil && a.Zone() == "" {
		return a.Unmap().String()
	}
	return h
}

func (s *Server) hostAllowed(host string) bool {
	_, ok := (*s.hosts.Load())[normalizeHost(host)]
	return ok
}

// Error codes of the agent's JSON error answers ({"code","message"}).
const (
	// CodeInvalidToken (400): the token is malformed, expired, or EKS Auth refused it.
	CodeInvalidToken = "InvalidToken"
	// CodeAccessDenied (403): EKS Auth denied the exchange.
	CodeAccessDenied = "AccessDenied"
	// CodeNoAssociation (404): no Pod Identity association for the service account.
	CodeNoAssociation = "NoAssociation"
	// CodeThrottled (429): EKS Auth or the agent's own budget is throttling; see Retry-After.
	CodeThrottled = "Throttled"
	// CodeUpstreamUnavailable (503): EKS Auth could not be reached or answered 5xx.
	CodeUpstreamUnavailable = "UpstreamUnavailable"
	// CodeUpstreamTimeout (504): EKS Auth did not answer within the upstream timeout.
	CodeUpstreamTimeout = "UpstreamTimeout"
	// CodeInvalidUpstreamAnswer (502): EKS Auth answered credentials that are already expired or
	// expire within the serve skew; retry later.
	CodeInvalidUpstreamAnswer = "InvalidUpstreamAnswer"
	// CodeNotFound (404): a path other than /v1/credentials.
	CodeNotFound = "NotFound"
	// CodeMethodNotAllowed (405): a method other than GET.
	CodeMethodNotAllowed = "MethodNotAllowed"
	// CodeInvalidHost (400): the Host header is not an agent address.
	CodeInvalidHost = "InvalidHost"
)

// Error is an agent answer other than 200, as sent to the client.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is one of the Code constants.
	Code string
	// Message explains the refusal; it never contains token material.
	Message string
	// RetryAfter is sent as Retry-After (429 only).
	RetryAfter time.Duration
	// Err is the cause (an *AuthError, a timeout, ...), not sent to the client.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("podidentity: %d %s: %s", e.Status, e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// errLocalRateLimit is the cause of 429 answers produced by the agent's own rate budget.
var errLocalRateLimit = errors.New("podidentity: the agent's upstream rate budget is exhausted")

// errSourceRateLimit is the cause of 429 answers to a source over its own budget of new tokens.
var errSourceRateLimit = errors.New("podidentity: the client's budget of new tokens is exhausted")

// maxRetryAfter caps the Retry-After sent to clients and the time a throttled token is answered
// from the cache, whatever EKS Auth asks for.
const maxRetryAfter = 30 * time.Second

// StaleCredentialsError reports an EKS Auth answer whose credentials had expired, or would expire
// within ServeSkew, when they arrived (EKS Auth credentials normally last hours; a wrong node clock
// causes this too). Such credentials are neither served nor cached.
type StaleCredentialsError struct {
	// Expiration is the credentials' expiration as answered.
	Expiration time.Time
	// Now is the agent's time when the answer arrived.
	Now time.Time
	// ServeSkew is the minimum remaining validity for credentials to be served.
	ServeSkew time.Duration
}

// Error implements error.
func (e *StaleCredentialsError) Error() string {
	return fmt.Sprintf("podidentity: EKS Auth answered credentials expiring at %s, %s from now (%s), which is not more than the serve skew %s; check the node's clock",
		e.Expiration.UTC().Format(time.RFC3339), e.Expiration.Sub(e.Now).Round(time.Second), e.Now.UTC().Format(time.RFC3339), e.ServeSkew)
}

// classify maps an upstream error to the client's answer and a metrics outcome.
func (s *Server) classify(err error) (*Error, string) {
	var ae *AuthError
	var te *AuthAttemptTimeoutError
	var se *StaleCredentialsError
	switch {
	case errors.As(err, &se):
		return &Error{Status: http.StatusBadGateway, Code: CodeInvalidUpstreamAnswer, Message: strings.TrimPrefix(se.Error(), "podidentity: ") + "; retry later", Err: err}, "invalid_answer"
	case errors.Is(err, errLocalRateLimit):
		return &Error{Status: 429, Code: CodeThrottled, Message: "too many credential requests on this node; retry later", RetryAfter: time.Second, Err: err}, "rate_limited"
	case errors.As(err, &ae):
		e, outcome := classifyAuth(ae, err)
		if ae.ClientMessage != "" {
			e.Message = ae.ClientMessage
		}
		return e, outcome
	case errors.As(err, &te), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: 504, Code: CodeUpstreamTimeout, Message: s.upstreamName + " did not answer in time", Err: err}, "timeout"
	default:
		return &Error{Status: 503, Code: CodeUpstreamUnavailable, Message: s.upstreamName + " could not be reached", Err: err}, "unavailable"
	}
}

// classifyAuth maps an EKS Auth exception (or a backend's error with the same codes).
func classifyAuth(ae *AuthError, err error) (*Error, string) {
	switch ae.Code {
	case AuthInvalidTokenException, AuthExpiredTokenException, AuthInvalidRequestException, AuthInvalidParameterException:
		return &Error{Status: 400, Code: CodeInvalidToken, Message: "EKS Auth refused the token: " + string(ae.Code), Err: err}, "invalid_token"
	case AuthAccessDeniedException:
		return &Error{Status: 403, Code: CodeAccessDenied, Message: "EKS Auth denied the request: AccessDeniedException", Err: err}, "denied"
	case AuthResourceNotFoundException:
		return &Error{Status: 404, Code: CodeNoAssociation, Message: "no EKS Pod Identity association for this service account", Err: err}, "not_found"
	case AuthThrottlingException:
		ra := min(ae.RetryAfter, maxRetryAfter)
		if ra <= 0 {
			ra = time.Second
		}
		return &Error{Status: 429, Code: CodeThrottled, Message: "EKS Auth is throttling; retry later", RetryAfter: ra, Err: err}, "throttled"
	}
	if ae.StatusCode >= 500 {
		return &Error{Status: 503, Code: CodeUpstreamUnavailable, Message: "EKS Auth is unavailable: " + string(ae.Code), Err: err}, "unavailable"
	}
	return &Error{Status: 503, Code: CodeUpstreamUnavailable, Message: "unexpected EKS Auth answer: " + string(ae.Code), Err: err}, "error"
}

// ServeHTTP implements http.Handler for GET /v1/credentials.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := s.serve(w, r)
	s.metrics.observe(code, time.Since(start).Seconds(), r.URL.Path == CredentialsPath)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) int {
	if !s.hostAllowed(r.Host) {
		return writeError(w, &Error{Status: 400, Code: CodeInvalidHost, Message: "Host header is not an agent address"})
	}
	if r.URL.Path != CredentialsPath {
		return writeError(w, &Error{Status: 404, Code: CodeNotFound, Message: "only " + CredentialsPath + " is served"})
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return writeError(w, &Error{Status: 405, Code: CodeMethodNotAllowed, Message: "only GET is allowed"})
	}
	token := strings.TrimSpace(r.Header.Get("Authorization"))
	if err := looksLikeJWT(token, s.opts.MaxTokenBytes); err != nil {
		return writeError(w, &Error{Status: 400, Code: CodeInvalidToken, Message: err.Error()})
	}
	val, err := s.cache.get(r.Context(), token, r.RemoteAddr)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			if r.Context().Err() != nil {
				// The client hung up; the fetch goes on and fills the cache. Nobody reads an answer.
				return statusClientClosed
			}
			e, _ = s.classify(err)
		}
		return writeError(w, e)
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{val.contentLength}
	_, _ = w.Write(val.body)
	return http.StatusOK
}

var jsonContentType = []string{"application/json"}

// statusClientClosed labels requests whose client hung up before the answer (nginx's 499).
const statusClientClosed = 499

func writeError(w http.ResponseWriter, e *Error) int {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{e.Code, e.Message})
	return e.Status
}

// tokenID is the short hash used for tokens in logs.
func tokenID(k key) string { return hex.EncodeToString(k[:6]) }

type key [sha256.Size]byte

// Health is the agent's view of EKS Auth.
type Health struct {
	// Upstream is "ok" or "unavailable".
	Upstream string `json:"upstream"`
	// ConsecutiveFailures counts upstream calls in a row that failed with unavailable or timeout.
	ConsecutiveFailures int64 `json:"consecutiveFailures"`
	// LastError is the last such failure, if any.
	LastError string `json:"lastError,omitempty"`
	// CacheEntries is the number of cached tokens.
	CacheEntries int `json:"cacheEntries"`
}

// Health reports upstream health as seen from the calls the agent made.
func (s *Server) Health() Health {
	n := s.consecutiveUnavailable.Load()
	h := Health{Upstream: "ok", ConsecutiveFailures: n, CacheEntries: s.cache.len()}
	if n >= int64(s.opts.UnhealthyAfter) {
		h.Upstream = "unavailable"
	}
	if p := s.lastUpstreamErr.Load(); p != nil && n > 0 {
		h.LastError = *p
	}
	return h
}

// Ready reports whether EKS Auth is considered reachable (readiness). It is independent of liveness:
// cached credentials keep being served while not ready.
func (s *Server) Ready() bool { return s.Health().Upstream == "ok" }

// LivenessHandler answers 200 while the server has not been closed; it never depends on EKS Auth.
func (s *Server) LivenessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.ctx.Err() != nil {
			http.Error(w, "closed", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}

// ReadinessHandler answers 200 with the Health as JSON while EKS Auth is reachable, 503 otherwise.
func (s *Server) ReadinessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := s.Health()
		w.Header().Set("Content-Type", "application/json")
		if h.Upstream != "ok" || s.ctx.Err() != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(h)
	})
}

// Serve serves the credential handler on ln until ctx ends, then shuts the listener down
// gracefully. It may be called for several listeners at once; they share the cache. The listener's
// IP is added to the accepted hosts.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
		s.AllowHost(ta.IP.String())
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      s.opts.UpstreamTimeout + s.opts.MissWait + 5*time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    s.opts.MaxTokenBytes + 8<<10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	close(done)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ListenError reports an address that could not be bound.
type ListenError struct {
	// Addr is the address as given.
	Addr string
	// Err is the bind error.
	Err error
}

// Error implements error.
func (e *ListenError) Error() string {
	return fmt.Sprintf("podidentity: listen on %s: %v", e.Addr, e.Err)
}

// Unwrap returns the cause.
func (e *ListenError) Unwrap() error { return e.Err }

// Listen binds every address it can ("host:port"); the ones that fail are returned as *ListenError
// without affecting the others. The sockets do not set SO_REUSEPORT: with it, another process of
// the same user on the host network could bind the same address and port and receive a share of
// the pods' tokens. A second bind fails with EADDRINUSE instead (a replacement agent binds once the
// old one has exited; ServeAddrs retries).
func Listen(ctx context.Context, addrs []string) ([]net.Listener, []error) {
	var lns []net.Listener
	var errs []error
	var lc net.ListenConfig
	for _, a := range addrs {
		ln, err := lc.Listen(ctx, "tcp", a)
		if err != nil {
			errs = append(errs, &ListenError{Addr: a, Err: err})
			continue
		}
		lns = append(lns, ln)
	}
	return lns, errs
}

// ServeAddrs binds every address in addrs and serves those that bind until ctx ends. An address that
// fails is logged and retried every retryEvery (no retries when 0) while the others keep serving.
// It returns an error only if no address could be bound at first.
func (s *Server) ServeAddrs(ctx context.Context, addrs []string, retryEvery time.Duration) error {
	lns, errs := Listen(ctx, addrs)
	for _, err := range errs {
		s.log.Error(err, "listener failed; the other listeners keep serving")
	}
	if len(lns) == 0 {
		return errors.Join(append([]error{fmt.Errorf("podidentity: no listener could be bound")}, errs...)...)
	}
	var wg sync.WaitGroup
	serve := func(ln net.Listener) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.log.Info("serving credentials", "addr", ln.Addr().String())
			if err := s.Serve(ctx, ln); err != nil {
				s.log.Error(err, "listener stopped", "addr", ln.Addr().String())
			}
		}()
	}
	for _, ln := range lns {
		serve(ln)
	}
	var pending []string
	for _, err := range errs {
		var le *ListenError
		if errors.As(err, &le) {
			pending = append(pending, le.Addr)
		}
	}
	if retryEvery > 0 && len(pending) > 0 {
		t := time.NewTicker(retryEvery)
		defer t.Stop()
	loop:
		for len(pending) > 0 {
			select {
			case <-ctx.Done():
				break loop
			case <-t.C:
			}
			lns, errs := Listen(ctx, pending)
			for _, ln := range lns {
				serve(ln)
			}
			pending = pending[:0]
			for _, err := range errs {
				var le *ListenError
				if errors.As(err, &le) {
					pending = append(pending, le.Addr)
				}
			}
		}
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}
