package impersonation

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// Config configures a Handler. Only Upstream is required.
type Config struct {
	// Upstream is the API server and the proxy's own credentials (Host, TLSClientConfig with
	// CAData or CAFile, BearerToken or BearerTokenFile, or a client certificate). In a pod:
	// rest.InClusterConfig().
	Upstream *rest.Config
	// IdentityHeader is the request header holding the caller's IAM ARN when Identity is nil.
	// It is never forwarded. Default: DefaultIdentityHeader.
	IdentityHeader string
	// Identity extracts the caller's ARN. Default: HeaderIdentity(IdentityHeader).
	Identity IdentityFunc
	// Mapper turns the validated ARN into the impersonated identity. Default: DefaultMapper
	// (Impersonate-User only, as the EKS Connector), or ExtrasMapper when UserExtras is set.
	Mapper Mapper
	// UserExtras, with no Mapper, also sends the user extras "arn" and "sessionname"
	// (ExtrasMapper). Off by default: it needs impersonate on userextras/* RBAC that the
	// connector RBAC AWS documents does not grant.
	UserExtras bool
	// Registerer receives the proxy's metrics. Optional; never the global registry implicitly.
	Registerer prometheus.Registerer
	// Logger receives one line per rejected identity or upstream failure (V(1): every request).
	Logger logr.Logger
	// Transport tunes the upstream transport.
	Transport TransportOptions
	// Now is the clock for latency metrics. Default: time.Now.
	Now func() time.Time
}

// Handler is an http.Handler that authenticates nothing itself but takes the caller's identity
// (by default the x-aws-eks-identity-arn header, as the EKS console's SSM channel sends it),
// validates it, and forwards the request to the API server as that identity. It fails closed:
// a missing, empty, repeated, malformed or "system:" identity gets a 401/403 metav1.Status and
// never reaches the API server. Bodies, Content-Type, Accept and Content-Encoding pass through
// unchanged, watches and log follows are flushed as they arrive, and exec/attach/port-forward
// upgrades (SPDY and WebSocket) are spliced over HTTP/1.1. Upstream failures become 502/503/504
// Status JSON.
type Handler struct {
	proxy     *httputil.ReverseProxy // requests and upgrades
	streams   *httputil.ReverseProxy // watches and log follows: small copy buffers
	transport *Transport
	identity  IdentityFunc
	mapper    Mapper
	header    string
	log       logr.Logger
	metrics   *metrics
	now       func() time.Time
	target    *url.URL   // the API server's base URL
	buffers   bufferPool // copy buffers of plain requests
	// cache holds the identities of recently seen raw identity values (nil: no caching).
	cache *identityCache
	// byKind are the per-kind metric children, looked up once instead of per request.
	byKind [numKinds]kindMetrics
}

// Request kinds, for metrics.
const (
	kindRequest = iota
	kindWatch
	kindUpgrade
	numKinds
)

var kindNames = [numKinds]string{"request", "watch", "upgrade"}

// kindMetrics are the metric children of one request kind.
type kindMetrics struct {
	duration prometheus.Observer
	active   prometheus.Gauge
	ok       prometheus.Counter // requests_total{code="200"}
}

// NewHandler builds a Handler and starts its background credential reload; Close stops it.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdentityHeader == "" {
		cfg.IdentityHeader = DefaultIdentityHeader
	}
	if cfg.Identity == nil {
		cfg.Identity = HeaderIdentity(cfg.IdentityHeader)
	}
	var cache *identityCache
	if cfg.Mapper == nil {
		// The built-in mappings are pure functions of the ARN: their results can be remembered.
		cfg.Mapper = DefaultMapper
		if cfg.UserExtras {
			cfg.Mapper = ExtrasMapper
		}
		cache = newIdentityCache()
	}
	m := newMetrics(cfg.Registerer)
	topts := cfg.Transport
	topts.metrics = m
	if topts.Logger.GetSink() == nil {
		topts.Logger = cfg.Logger
	}
	t, err := NewTransport(cfg.Upstream, topts)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		transport: t,
		identity:  cfg.Identity,
		mapper:    cfg.Mapper,
		header:    cfg.IdentityHeader,
		log:       cfg.Logger,
		metrics:   m,
		now:       cfg.Now,
		cache:     cache,
		target:    t.URL(),
		buffers:   newBufferPool(32 << 10),
	}
	for k, name := range kindNames {
		h.byKind[k] = kindMetrics{
			duration: m.duration.WithLabelValues(name),
			active:   m.activeStreams.WithLabelValues(name),
			ok:       m.requests.WithLabelValues("200", name),
		}
	}
	target := t.URL()
	h.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
		},
		Transport: NewRoundTripper(t, cfg.IdentityHeader),
		// Zero: a response with a Content-Length goes out in one write when it is complete,
		// instead of a header flush (from a timer goroutine) and one flush per body read.
		// ReverseProxy still flushes every write of a response without a Content-Length
		// (anything the API server streams), even when the request was not classified a stream.
		FlushInterval: 0,
		BufferPool:    h.buffers,
		ErrorHandler:  h.upstreamError,
		ErrorLog:      log.New(logWriter{cfg.Logger}, "", 0),
	}
	streams := *h.proxy
	// Watches and log follows: the headers and every write go out immediately.
	streams.FlushInterval = -1
	// A watch holds its copy buffer for its whole life, and events are small: 2 KiB keeps
	// hundreds of idle watches cheap (larger events just take several reads).
	streams.BufferPool = newBufferPool(2 << 10)
	h.streams = &streams
	return h, nil
}

// Transport returns the upstream transport (the proxy's own identity, not impersonating), for
// example for readiness checks or to build other clients on the same connections.
func (h *Handler) Transport() *Transport { return h.transport }

// Close stops the background credential reload and closes idle upstream connections.
func (h *Handler) Close() error { return h.transport.Close() }

// requestKind classifies a request for metrics: "upgrade", "watch" (watches and log follows) or
// "request".
func requestKind(r *http.Request) string { return kindNames[kindOf(r)] }

func kindOf(r *http.Request) int {
	if UpgradeType(r.Header) != "" {
		return kindUpgrade
	}
	q := r.URL.RawQuery
	if q != "" && (strings.Contains(q, "watch") || strings.Contains(q, "follow")) {
		v := r.URL.Query()
		if queryTrue(v, "watch") || queryTrue(v, "follow") {
			return kindWatch
		}
	}
	if strings.Contains(r.URL.Path, "/watch/") {
		return kindWatch
	}
	return kindRequest
}

// queryTrue parses a boolean query parameter as the API server does: present and neither "0"
// nor "false" (any case) is true, even when empty.
func queryTrue(v url.Values, key string) bool {
	vs, ok := v[key]
	if !ok || len(vs) == 0 {
		return false
	}
	return vs[0] != "0" && !strings.EqualFold(vs[0], "false")
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	kind := kindOf(r)
	km := &h.byKind[kind]
	rec := &recorder{ResponseWriter: w}
	if kind != kindRequest {
		km.active.Inc()
		defer km.active.Dec()
	}
	defer func() {
		code := rec.code
		if code == 0 {
			code = 499 // nothing was written: the client went away
		}
		if code == http.StatusOK {
			km.ok.Inc()
		} else {
			h.metrics.requests.WithLabelValues(strconv.Itoa(code), kindNames[kind]).Inc()
		}
		km.duration.Observe(h.now().Sub(start).Seconds())
	}()

	id, err := h.resolve(r)
	if err != nil {
		h.reject(rec, r, err)
		return
	}
	if h.log.V(1).Enabled() {
		h.log.V(1).Info("forwarding", "method", r.Method, "path", r.URL.Path, "user", id.User, "kind", kindNames[kind])
	}
	switch kind {
	case kindRequest:
		h.forward(rec, r, id)
	case kindWatch:
		h.streams.ServeHTTP(rec, r.WithContext(WithIdentity(r.Context(), id)))
	default:
		h.proxy.ServeHTTP(rec, r.WithContext(WithIdentity(r.Context(), id)))
	}
}

func (h *Handler) resolve(r *http.Request) (Identity, error) {
	raw, err := h.identity(r)
	if err != nil {
		return Identity{}, err
	}
	if id, ok := h.cache.get(raw); ok {
		return id, nil
	}
	p, err := ParseARN(raw)
	if err != nil {
		return Identity{}, err
	}
	id, err := h.mapper(p)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: mapping %s: %v", ErrInvalidIdentity, p.ARN, err)
	}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	h.cache.put(raw, id)
	return id, nil
}

// identityCache remembers the validated identities of recently seen raw identity values, for a
// mapping that is a pure function of the value (the built-in one): a busy caller's ARN is parsed
// and validated once, not per request. Only successes are kept; it is bounded in entries and key
// length and simply starts over when full. Cached identities are shared: nothing modifies them
// (SetIdentityHeaders copies the values it sends).
type identityCache struct {
	mu sync.RWMutex
	m  map[string]Identity
}

const (
	identityCacheEntries = 1024
	identityCacheMaxKey  = 512 // IAM ARNs are far shorter in practice
)

func newIdentityCache() *identityCache {
	return &identityCache{m: make(map[string]Identity)}
}

func (c *identityCache) get(raw string) (Identity, bool) {
	if c == nil {
		return Identity{}, false
	}
	c.mu.RLock()
	id, ok := c.m[raw]
	c.mu.RUnlock()
	return id, ok
}

func (c *identityCache) put(raw string, id Identity) {
	if c == nil || len(raw) > identityCacheMaxKey {
		return
	}
	c.mu.Lock()
	if len(c.m) >= identityCacheEntries {
		clear(c.m)
	}
	c.m[raw] = id
	c.mu.Unlock()
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request, err error) {
	code, reason, label := http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "invalid"
	switch {
	case errors.Is(err, ErrReservedIdentity):
		code, reason, label = http.StatusForbidden, metav1.StatusReasonForbidden, "reserved"
	case errors.Is(err, ErrNoIdentity):
		label = "missing"
	case errors.Is(err, ErrAmbiguousIdentity):
		label = "ambiguous"
	}
	h.metrics.rejected.WithLabelValues(label).Inc()
	h.log.Info("rejected request without a usable identity", "method", r.Method, "path", r.URL.Path, "reason", label, "error", err.Error())
	writeStatus(w, code, reason, err.Error())
}

func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	code, reason, label := classifyUpstreamError(r.Context(), err)
	h.metrics.upstreamErrors.WithLabelValues(label).Inc()
	if code == 0 {
		return
	}
	h.log.Error(err, "upstream request failed", "method", r.Method, "path", r.URL.Path, "code", code)
	msg := fmt.Sprintf("impersonation proxy: the API server could not be reached: %v", err)
	writeStatus(w, code, reason, msg)
}

// Ready reports whether the API server answers /readyz with the proxy's own credentials.
func (h *Handler) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u := h.transport.URL().JoinPath("readyz")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := h.transport.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("impersonation: API server not reachable: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("impersonation: API server /readyz answered %d", resp.StatusCode)
	}
	return nil
}

// recorder captures the status code while keeping Flush and Hijack reachable for ReverseProxy.
type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 || r.code < 200 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack is called by ReverseProxy for a 101 Switching Protocols response.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.code = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// bufferPool recycles ReverseProxy's copy buffers (one per response, held until it ends).
type bufferPool struct{ pool *sync.Pool }

func newBufferPool(size int) bufferPool {
	return bufferPool{pool: &sync.Pool{New: func() any { b := make([]byte, size); return &b }}}
}

func (p bufferPool) Get() []byte  { return *(p.pool.Get().(*[]byte)) }
func (p bufferPool) Put(b []byte) { p.pool.Put(&b) }

// logWriter sends ReverseProxy's own log lines to logr at V(1).
type logWriter struct{ log logr.Logger }

func (l logWriter) Write(p []byte) (int, error) {
	l.log.V(1).Info(strings.TrimSpace(string(p)))
	return len(p), nil
}
