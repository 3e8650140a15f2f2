package impersonation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
)

// TransportOptions tune NewTransport. The zero value is a working default.
type TransportOptions struct {
	// ReloadInterval is how often the token and CA files are re-read even without a file event.
	// Default: one minute.
	ReloadInterval time.Duration
	// DialContext dials the API server. Default: a net.Dialer with DialTimeout and TCP keep-alives
	// (rest.Config.Dial is used when set).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// DialTimeout bounds connection set-up. Default: 10 s.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake. Default: 10 s.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers (not the body, so watches and
	// log streams are unaffected). Default: 90 s, longer than the API server's own 60 s limit.
	ResponseHeaderTimeout time.Duration
	// MaxConnections bounds the HTTP/2 connections to the API server (each multiplexes up to the
	// server's --http2-max-streams-per-connection streams, default 100; requests beyond that
	// wait). Default: 16. Upgrades use their own HTTP/1.1 connections and are not counted.
	MaxConnections int
	// Logger receives reload and error events. Default: discard.
	Logger logr.Logger
	// Registerer receives the credential reload counter (optional).
	Registerer prometheus.Registerer

	// disableWatch turns off fsnotify (tests of the periodic and 401 paths).
	disableWatch bool
	// readFile replaces os.ReadFile (tests count disk reads).
	readFile func(string) ([]byte, error)
	// metrics is shared with a Handler.
	metrics *metrics
}

// Transport is the upstream side of an impersonating proxy: it authenticates as the proxy itself
// (the bearer token from rest.Config.BearerToken or BearerTokenFile, reloaded in the background;
// or a client certificate) and verifies the API server with the CA from rest.Config (CAFile
// reloaded in the background). It is built once and keeps its connections: normal requests use
// HTTP/2 (multiplexed), protocol upgrades (exec, attach, port-forward over SPDY or WebSocket) use
// a separate HTTP/1.1 transport, since HTTP/2 cannot carry Upgrade. A 401 from the API server
// forces an immediate re-read of the token; a body-less request is then retried once with the
// new token. Close stops the background reload.
type Transport struct {
	base    *url.URL
	creds   *credentials
	h2, h1  *http.Transport
	h1pool  *http.Transport // normal requests when the upstream does not speak HTTP/2
	static  *bearer         // static bearer token (rest.Config.BearerToken without a file)
	cancel  context.CancelFunc
	done    chan struct{}
	metrics *metrics
	gate    dialGate
}

// dialGate stops a burst of requests on a cold HTTP/2 transport from dialing one connection each
// (net/http dials per waiting request until it learns the server speaks HTTP/2; 500 watches
// started together otherwise cost hundreds of TLS handshakes). While no connection is known to be
// alive, requests pass one at a time until one gets a connection; an HTTP/2 connection then
// serves everyone. It switches itself off for HTTP/1.1 upstreams, and the Transport then sends
// normal requests over a pooled HTTP/1.1 transport without the connection bound.
type dialGate struct {
	// turn is held by the one request let through while cold; a channel (not a mutex) so that
	// waiting requests still end with their own context when that request's dial hangs.
	turn      chan struct{}
	warmUntil atomic.Int64 // unix nanoseconds until which a live HTTP/2 connection is assumed
	off       atomic.Bool
}

// warmFor is how long a successful response vouches for the connection (less than typical idle
// timeouts, so a burst after a quiet period is gated again).
const warmFor = 30 * time.Second

// enter returns the request to send and a release function to call once it has its response, or
// the request context's error if it ends while waiting for its turn.
func (g *dialGate) enter(req *http.Request) (*http.Request, func(), error) {
	if g.off.Load() || time.Now().UnixNano() < g.warmUntil.Load() {
		return req, func() {}, nil
	}
	select {
	case g.turn <- struct{}{}:
	case <-req.Context().Done():
		return nil, nil, req.Context().Err()
	}
	if g.off.Load() || time.Now().UnixNano() < g.warmUntil.Load() {
		<-g.turn
		return req, func() {}, nil
	}
	var once sync.Once
	release := func() { once.Do(func() { <-g.turn }) }
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if tc, ok := info.Conn.(*tls.Conn); !ok || tc.ConnectionState().NegotiatedProtocol != "h2" {
			g.off.Store(true)
		} else {
			g.warmUntil.Store(time.Now().Add(warmFor).UnixNano())
		}
		release()
	}}
	return req.WithContext(httptrace.WithClientTrace(req.Context(), trace)), release, nil
}

func (g *dialGate) done(err error) {
	if err != nil {
		g.warmUntil.Store(0)
	} else if !g.off.Load() {
		g.warmUntil.Store(time.Now().Add(warmFor).UnixNano())
	}
}

// NewTransport builds the upstream transport for cfg (Host, TLSClientConfig, BearerToken,
// BearerTokenFile). Files are read once here (an error if they are unusable) and then in the
// background, never per request. The proxy must have credentials of its own (a bearer token, a
// token file or a client certificate); exec and auth-provider plugins and basic auth are not
// supported.
func NewTransport(cfg *rest.Config, opts TransportOptions) (*Transport, error) {
	if cfg == nil || cfg.Host == "" {
		return nil, errors.New("impersonation: upstream rest.Config with a Host is required")
	}
	if cfg.ExecProvider != nil || cfg.AuthProvider != nil {
		return nil, errors.New("impersonation: exec and auth-provider credentials are not supported for the upstream; use a bearer token (file) or a client certificate")
	}
	if cfg.Username != "" || cfg.Password != "" {
		return nil, errors.New("impersonation: basic auth is not supported for the upstream; use a bearer token (file) or a client certificate")
	}
	tc := cfg.TLSClientConfig
	if cfg.BearerToken == "" && cfg.BearerTokenFile == "" && len(tc.CertData) == 0 && tc.CertFile == "" {
		return nil, errors.New("impersonation: the upstream rest.Config has no credentials (bearer token, token file or client certificate); requests would reach the API server anonymously")
	}
	host := cfg.Host
	if !hasScheme(host) {
		host = "https://" + host
	}
	u, err := url.Parse(host)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("impersonation: upstream host %q is not a URL: %v", cfg.Host, err)
	}
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = time.Minute
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.TLSHandshakeTimeout <= 0 {
		opts.TLSHandshakeTimeout = 10 * time.Second
	}
	if opts.ResponseHeaderTimeout <= 0 {
		opts.ResponseHeaderTimeout = 90 * time.Second
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = 16
	}
	if opts.readFile == nil {
		opts.readFile = defaultReadFile
	}
	m := opts.metrics
	if m == nil {
		m = newMetrics(opts.Registerer)
	}
	t := &Transport{base: u, metrics: m, done: make(chan struct{})}
	t.gate.turn = make(chan struct{}, 1)
	t.creds = &credentials{
		tokenFile: cfg.BearerTokenFile,
		caFile:    cfg.TLSClientConfig.CAFile,
		readFile:  opts.readFile,
		log:       opts.Logger.WithName("credentials"),
		metrics:   m,
		now:       time.Now,
	}
	if cfg.BearerTokenFile == "" && cfg.BearerToken != "" {
		t.static = newBearer(cfg.BearerToken)
	}
	if len(cfg.TLSClientConfig.CAData) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.TLSClientConfig.CAData) {
			return nil, errors.New("impersonation: rest.Config CAData holds no PEM certificate")
		}
		t.creds.pool.Store(pool)
	}
	if cfg.BearerTokenFile != "" || cfg.TLSClientConfig.CAFile != "" {
		if _, err := t.creds.reload("start"); err != nil {
			return nil, fmt.Errorf("impersonation: loading upstream credentials: %w", err)
		}
	}

	tlsCfg, err := t.tlsConfig(cfg, u)
	if err != nil {
		return nil, err
	}
	dial := opts.DialContext
	if dial == nil && cfg.Dial != nil {
		dial = cfg.Dial
	}
	if dial == nil {
		dial = (&net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	proxy := http.ProxyFromEnvironment
	if cfg.Proxy != nil {
		proxy = cfg.Proxy
	}
	t.h2 = &http.Transport{
		Proxy:                 proxy,
		DialContext:           dial,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   opts.TLSHandshakeTimeout,
		ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		// net/http dials a connection per waiting request whenever no HTTP/2 connection has a
		// free stream; bounding connections bounds those dial storms. Each carries up to the API
		// server's stream limit (100 by default), so 16 allow 1,600 concurrent streams.
		MaxConnsPerHost: opts.MaxConnections,
		IdleConnTimeout: 90 * time.Second,
		// The API server's responses are already compressed or small; pass Accept-Encoding through
		// untouched instead of letting the transport negotiate and transparently decompress.
		DisableCompression: true,
		HTTP2: &http.HTTP2Config{
			// Detect a half-open connection to a vanished API server.
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     15 * time.Second,
		},
	}
	h1TLS := tlsCfg.Clone()
	h1TLS.NextProtos = []string{"http/1.1"}
	h1Protocols := new(http.Protocols)
	h1Protocols.SetHTTP1(true)
	t.h1 = &http.Transport{
		Proxy:                 proxy,
		DialContext:           dial,
		TLSClientConfig:       h1TLS,
		TLSHandshakeTimeout:   opts.TLSHandshakeTimeout,
		ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
		Protocols:             h1Protocols,
		DisableCompression:    true,
		MaxIdleConnsPerHost:   -1, // upgraded connections are never reused
	}

	t.h1pool = t.h1.Clone()
	t.h1pool.MaxIdleConnsPerHost = 32
	t.h1pool.IdleConnTimeout = 90 * time.Second

	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	if cfg.BearerTokenFile != "" || cfg.TLSClientConfig.CAFile != "" {
		go func() {
			defer close(t.done)
			t.creds.run(ctx, opts.ReloadInterval, !opts.disableWatch)
		}()
	} else {
		close(t.done)
	}
	return t, nil
}

func hasScheme(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http")
}

// tlsConfig verifies the server against the current (reloadable) pool in VerifyConnection, so a
// rotated CA applies to new connections without rebuilding the transport.
func (t *Transport) tlsConfig(cfg *rest.Config, u *url.URL) (*tls.Config, error) {
	tc := cfg.TLSClientConfig
	serverName := tc.ServerName
	if serverName == "" {
		serverName = u.Hostname()
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: tc.ServerName}
	if len(tc.CertData) > 0 || tc.CertFile != "" {
		certPEM, keyPEM := tc.CertData, tc.KeyData
		var err error
		if len(certPEM) == 0 {
			if certPEM, err = os.ReadFile(tc.CertFile); err != nil {
				return nil, fmt.Errorf("impersonation: client certificate: %w", err)
			}
		}
		if len(keyPEM) == 0 {
			if keyPEM, err = os.ReadFile(tc.KeyFile); err != nil {
				return nil, fmt.Errorf("impersonation: client key: %w", err)
			}
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("impersonation: client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if tc.Insecure {
		c.InsecureSkipVerify = true
		return c, nil
	}
	if t.creds.Pool() == nil {
		return c, nil // system roots, standard verification
	}
	// Verification happens in VerifyConnection against the pool of the moment.
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return &tls.CertificateVerificationError{Err: errors.New("impersonation: API server sent no certificate")}
		}
		inter := x509.NewCertPool()
		for _, ic := range cs.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
			Roots:         t.creds.Pool(),
			Intermediates: inter,
			DNSName:       serverName,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
		return nil
	}
	return c, nil
}

// URL is the API server's base URL.
func (t *Transport) URL() *url.URL { u := *t.base; return &u }

// RoundTrip implements http.RoundTripper. Requests carrying "Connection: Upgrade" go over
// HTTP/1.1; the rest over HTTP/2 when the server offers it.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	if out.Header == nil {
		out.Header = http.Header{}
	}
	return t.roundTripOwned(out)
}

// roundTripOwned sends out, a request the caller cloned for it (with a non-nil Header): it sets
// the Authorization header on it without another copy.
func (t *Transport) roundTripOwned(out *http.Request) (*http.Response, error) {
	b := t.static
	if b == nil {
		b = t.creds.bearer()
	}
	if b != nil {
		out.Header["Authorization"] = b.values
	} else if t.creds.tokenFile != "" {
		closeBody(out)
		return nil, errNoToken
	}
	rt := t.h2
	upgrade := UpgradeType(out.Header) != ""
	var resp *http.Response
	var err error
	if upgrade {
		rt = t.h1
		resp, err = rt.RoundTrip(out)
	} else if t.gate.off.Load() {
		rt = t.h1pool
		resp, err = rt.RoundTrip(out)
	} else {
		gated, release, gerr := t.gate.enter(out)
		if gerr != nil {
			closeBody(out)
			return nil, gerr
		}
		resp, err = rt.RoundTrip(gated)
		release()
		t.gate.done(err)
	}
	if err != nil || resp.StatusCode != http.StatusUnauthorized || t.creds.tokenFile == "" {
		return resp, err
	}
	// Our token was refused: it may have been rotated under us. Re-read now, not at the next tick
	// (rate-limited; a concurrent 401 or the file watcher may have loaded a new token already).
	t.creds.reloadAfter401(time.Second)
	fresh := t.creds.bearer()
	if fresh == nil || fresh.token == b.token || upgrade || !replayable(out) {
		return resp, nil
	}
	retry := out.Clone(out.Context()) // out: a non-nil Header, without the gate's trace
	if out.GetBody != nil {
		if retry.Body, err = out.GetBody(); err != nil {
			return resp, nil
		}
	}
	retry.Header["Authorization"] = fresh.values
	resp2, err := rt.RoundTrip(retry)
	if err != nil {
		return resp, nil
	}
	drain(resp)
	return resp2, nil
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func drain(resp *http.Response) {
	_ = resp.Body.Close()
}

// CloseIdleConnections closes idle upstream connections.
func (t *Transport) CloseIdleConnections() {
	t.h2.CloseIdleConnections()
	t.h1.CloseIdleConnections()
	t.h1pool.CloseIdleConnections()
}

// Close stops the background credential reload and closes idle connections.
func (t *Transport) Close() error {
	t.cancel()
	<-t.done
	t.CloseIdleConnections()
	return nil
}
