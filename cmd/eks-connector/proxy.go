package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/impersonation"
	"github.com/ekslink/ekslink/internal/cli"
	"github.com/ekslink/ekslink/manifest/flagname"
)

// In-cluster defaults of the proxy role.
const (
	defaultListen    = "unix:///var/eks/shared/connector.sock"
	defaultTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	defaultCAFile    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// proxyHooks are the integration points of the proxy role. The zero value runs the plain proxy.
// Running the vault key sync inside the proxy container is, with sync.go's helpers:
//
//	var ks keySyncFlags
//	newProxyCommandWithHooks(proxyHooks{
//		addFlags: func(fs *pflag.FlagSet) { addKeySyncFlags(fs, &ks) },
//		startBackground: func(ctx context.Context, log logr.Logger, reg prometheus.Registerer) (func() error, error) {
//			return startKeySync(ctx, log, reg, ks)
//		},
//	})
type proxyHooks struct {
	// addFlags adds more flags to the command (after the proxy's own).
	addFlags func(fs *pflag.FlagSet)
	// extraReadyChecks run on every /readyz after the API server check; any error makes the pod
	// unready (for example: "the rotated SSM key has not reached the state Secret yet"). They
	// must be cheap: they are not cached. Their error text is logged at V(1), never served.
	extraReadyChecks []func() error
	// readyReason names the extra and background checks in the /readyz answer ("not ready:
	// <readyReason>"); default "background work".
	readyReason string
	// readyCacheTTL overrides how long the API server check is reused (default readyCacheTTL).
	readyCacheTTL time.Duration
	// startBackground, when set, starts background work (for example the vault key-sync loop)
	// before the servers, with a context cancelled at shutdown, the proxy's logger and metrics
	// registry. Its error aborts the start; a non-nil ready function joins /readyz.
	startBackground func(ctx context.Context, log logr.Logger, reg prometheus.Registerer) (ready func() error, err error)
	// listening is told each server's address once it listens ("proxy", "metrics", "health").
	listening func(name string, addr net.Addr)
	// stderr receives the JSON logs (default os.Stderr).
	stderr io.Writer
}

type proxyOptions struct {
	listen          string
	apiServer       string
	tokenFile       string
	caFile          string
	metricsAddr     string
	healthAddr      string
	identityHeader  string
	userExtras      bool
	allowRemote     bool
	shutdownTimeout time.Duration
	verbosity       int
}

// newProxyCommandWithHooks is the connector's "proxy" role; proxyHooks{} runs the plain proxy
// (main.go adds the key sync).
func newProxyCommandWithHooks(hooks proxyHooks) *cobra.Command {
	o := &proxyOptions{}
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Serve the fail-closed impersonating proxy the SSM agent forwards console requests to",
		Long: `Serve the impersonating proxy on a unix socket (or TCP). Each request must carry exactly one
x-aws-eks-identity-arn header holding a valid IAM principal ARN; it is forwarded to the API server
as "Impersonate-User: <ARN>" and nothing else, as the EKS Connector does, authenticated with this
pod's service-account token, so the RBAC AWS documents for the connector (impersonate on users,
restricted to the ARNs) is all it needs. --user-extras also sends the ARN and an assumed role's
session name as the user extras "arn" and "sessionname" (audit logs, RBAC on extras); the service
account then also needs impersonate on userextras/arn and userextras/sessionname. Requests without
a usable identity are refused with 401/403 and never reach the API server. The header itself is
trusted, so only the SSM agent may reach the proxy: a unix socket, or TCP on loopback
(--allow-remote-callers to override).

Every flag can also be set with the environment variable shown in its description.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if hooks.stderr == nil {
				hooks.stderr = cmd.ErrOrStderr()
			}
			return runProxy(cmd.Context(), o, hooks)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.listen, flagname.Listen, defaultListen, "where to serve the proxy: unix:///path (mode 0660) or tcp://host:port (loopback unless --allow-remote-callers)")
	fs.StringVar(&o.apiServer, "api-server", "", "API server URL (default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, else https://kubernetes.default.svc)")
	fs.StringVar(&o.tokenFile, "token-file", defaultTokenFile, "service-account token, re-read on change")
	fs.StringVar(&o.caFile, "ca-file", defaultCAFile, "CA bundle verifying the API server, re-read on change")
	fs.StringVar(&o.metricsAddr, flagname.MetricsAddr, "127.0.0.1:8080", "address of /metrics (empty: off)")
	fs.StringVar(&o.healthAddr, flagname.HealthAddr, ":8081", "address of /healthz and /readyz (empty: off); the manifests use [$(POD_IP)]:8081, where the kubelet probes")
	fs.BoolVar(&o.allowRemote, "allow-remote-callers", false, "allow --listen=tcp:// on a non-loopback address; whoever can connect may then claim any IAM identity, so only with network policy or an authenticating front")
	fs.StringVar(&o.identityHeader, "identity-header", impersonation.DefaultIdentityHeader, "request header holding the caller's IAM ARN")
	fs.BoolVar(&o.userExtras, flagname.UserExtras, false, "also send the user extras arn and sessionname (needs impersonate on userextras/arn and userextras/sessionname, which the RBAC AWS documents does not grant)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long SIGTERM waits for in-flight requests before closing connections")
	fs.IntVarP(&o.verbosity, "v", "v", 0, "log verbosity (1: every request)")
	if hooks.addFlags != nil {
		hooks.addFlags(fs)
	}
	cli.BindEnv(cmd, envPrefix) // the added flags too
	return cmd
}

func inClusterHost() string {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host != "" && port != "" {
		return "https://" + net.JoinHostPort(host, port)
	}
	return "https://kubernetes.default.svc"
}

func runProxy(ctx context.Context, o *proxyOptions, hooks proxyHooks) error {
	logger := cli.NewLogger(hooks.stderr, o.verbosity).WithName("proxy")
	if err := checkListenExposure(o.listen, o.allowRemote); err != nil {
		return err
	}
	if err := checkProbeAddr("--health-addr", o.healthAddr); err != nil {
		return err
	}
	if o.apiServer == "" {
		o.apiServer = inClusterHost()
	}
	reg := cli.NewRegistry()
	h, err := impersonation.NewHandler(impersonation.Config{
		Upstream: &rest.Config{
			Host:            o.apiServer,
			BearerTokenFile: o.tokenFile,
			TLSClientConfig: rest.TLSClientConfig{CAFile: o.caFile},
		},
		IdentityHeader: o.identityHeader,
		UserExtras:     o.userExtras,
		Registerer:     reg,
		Logger:         logger,
	})
	if err != nil {
		return err
	}
	defer h.Close()

	// Background work lives as long as the servers; cancelled after they have drained.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	readyChecks := hooks.extraReadyChecks
	if hooks.startBackground != nil {
		ready, err := hooks.startBackground(bgCtx, logger, reg)
		if err != nil {
			return fmt.Errorf("starting background work: %w", err)
		}
		if ready != nil {
			readyChecks = append(readyChecks, ready)
		}
	}

	ln, err := listen(o.listen)
	if err != nil {
		return err
	}
	var draining atomic.Bool
	servers := map[string]*http.Server{}
	listeners := map[string]net.Listener{"proxy": ln}
	errLog := log.New(logWriter{logger}, "", 0)
	// http.Server.Shutdown neither waits for nor closes hijacked connections (exec, attach and
	// port-forward sessions): track them, and close them when the drain times out.
	sessions := &sessionSet{conns: map[net.Conn]struct{}{}}
	servers["proxy"] = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c, ok := r.Context().Value(connKey{}).(net.Conn); ok && impersonation.UpgradeType(r.Header) != "" {
				sessions.add(c)
				defer sessions.remove(c)
			}
			h.ServeHTTP(w, r)
		}),
		ConnContext:       func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errLog,
		// No WriteTimeout: watches, log follows and exec sessions are long-lived.
	}
	// /readyz is reachable by more than the kubelet: the API server check (a request with the
	// proxy's own token) is shared and cached, and the answer names what is not ready without
	// the upstream error text, which goes to the log.
	apiReady := newReadyCache("api server", h.Ready, logger)
	if hooks.readyCacheTTL > 0 {
		apiReady.ttl = hooks.readyCacheTTL
	}
	otherReason := hooks.readyReason
	if otherReason == "" {
		otherReason = "background work"
	}
	health := http.NewServeMux()
	health.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	health.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			http.Error(w, "not ready: shutting down", http.StatusServiceUnavailable)
			return
		}
		if err := apiReady.get(r.Context()); err != nil {
			http.Error(w, "not ready: api server", http.StatusServiceUnavailable)
			return
		}
		for _, check := range readyChecks {
			if err := check(); err != nil {
				logger.V(1).Info("readiness check failed", "check", otherReason, "error", err.Error())
				http.Error(w, "not ready: "+otherReason, http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	// One address for both (":0" means two distinct ephemeral ports).
	if o.metricsAddr != "" && o.metricsAddr == o.healthAddr && !strings.HasSuffix(o.metricsAddr, ":0") {
		health.Handle("/metrics", metricsHandler)
	} else if o.metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", metricsHandler)
		servers["metrics"] = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
		if listeners["metrics"], err = net.Listen("tcp", o.metricsAddr); err != nil {
			_ = ln.Close()
			return fmt.Errorf("metrics listener: %w", err)
		}
	}
	if o.healthAddr != "" {
		servers["health"] = &http.Server{Handler: health, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
		if listeners["health"], err = net.Listen("tcp", o.healthAddr); err != nil {
			for _, l := range listeners {
				_ = l.Close()
			}
			return fmt.Errorf("health listener: %w", err)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	for name, srv := range servers {
		l := listeners[name]
		logger.Info("serving", "server", name, "address", l.Addr().String())
		if hooks.listening != nil {
			hooks.listening(name, l.Addr())
		}
		g.Go(func() error {
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("%s server: %w", name, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		draining.Store(true)
		logger.Info("shutting down: draining in-flight requests", "timeout", o.shutdownTimeout.String())
		dctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
		defer cancel()
		// The proxy first, so probes keep answering (unready) while it drains.
		if err := servers["proxy"].Shutdown(dctx); err != nil {
			logger.Info("drain timed out; closing the remaining connections", "error", err.Error())
			_ = servers["proxy"].Close()
		}
		if n := sessions.len(); n > 0 {
			logger.Info("waiting for exec/attach/port-forward sessions to end", "sessions", n)
			if !sessions.waitEmpty(dctx) {
				logger.Info("drain timed out; closing the remaining sessions", "sessions", sessions.len())
				sessions.closeAll()
				// Their handlers return as the copies fail; wait briefly for that.
				cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
				sessions.waitEmpty(cctx)
				ccancel()
			}
		}
		for name, srv := range servers {
			if name != "proxy" {
				_ = srv.Shutdown(dctx)
			}
		}
		return nil
	})
	err = g.Wait()
	if err == nil && ctx.Err() != nil {
		logger.Info("stopped")
	}
	return err
}

type connKey struct{}

// sessionSet holds the client connections of upgraded requests in flight.
type sessionSet struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (s *sessionSet) add(c net.Conn) { s.mu.Lock(); s.conns[c] = struct{}{}; s.mu.Unlock() }

func (s *sessionSet) remove(c net.Conn) { s.mu.Lock(); delete(s.conns, c); s.mu.Unlock() }

func (s *sessionSet) len() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.conns) }

func (s *sessionSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

// waitEmpty polls until no session is left (true) or ctx ends (false).
func (s *sessionSet) waitEmpty(ctx context.Context) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.len() > 0 {
		select {
		case <-ctx.Done():
			return s.len() == 0
		case <-tick.C:
		}
	}
	return true
}

// checkProbeAddr refuses an address whose host is empty brackets, "[]:8081": what
// "[$(POD_IP)]:8081" becomes when POD_IP is unset, and what would listen on every interface.
func checkProbeAddr(flag, addr string) error {
	if strings.HasPrefix(addr, "[]") {
		return fmt.Errorf("%s %q has an empty host: set POD_IP (downward API status.podIP) or give the address to listen on", flag, addr)
	}
	return nil
}

// checkListenExposure refuses a TCP listener that other hosts or pods can reach unless allowed:
// the proxy believes the identity header of whoever connects.
func checkListenExposure(spec string, allowRemote bool) error {
	u, err := url.Parse(spec)
	if err != nil || u.Scheme != "tcp" || allowRemote {
		return nil // listen reports malformed specs
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen %q is reachable from other hosts, and the proxy trusts the identity header of whoever connects: use a unix socket or a loopback address, or pass --allow-remote-callers", spec)
}

// listen opens unix:///path (replacing a stale socket, mode 0660) or tcp://host:port.
func listen(spec string) (net.Listener, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: %w", spec, err)
	}
	switch u.Scheme {
	case "tcp":
		if u.Host == "" {
			return nil, fmt.Errorf("--listen %q: want tcp://host:port", spec)
		}
		return net.Listen("tcp", u.Host)
	case "unix":
		if u.Host != "" {
			// unix://var/run/x.sock parses as host "var", path "/run/x.sock".
			return nil, fmt.Errorf("--listen %q: want unix:///absolute/path (three slashes)", spec)
		}
		path := u.Path
		if path == "" {
			path = u.Opaque
		}
		if path == "" {
			return nil, fmt.Errorf("--listen %q: want unix:///absolute/path", spec)
		}
		if err := removeStaleSocket(path); err != nil {
			return nil, err
		}
		// Create the socket without group/other write access from the first moment, then set
		// the final mode explicitly (the umask is process-wide, so restore it at once).
		old := syscall.Umask(0o177)
		l, err := net.Listen("unix", path)
		syscall.Umask(old)
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(path, 0o660); err != nil {
			_ = l.Close()
			return nil, err
		}
		return l, nil
	default:
		return nil, fmt.Errorf("--listen %q: scheme must be unix or tcp", spec)
	}
}

// removeStaleSocket deletes a socket left by a previous process, refusing to touch anything that
// is not a socket or a socket someone still serves on.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket; refusing to replace it", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return fmt.Errorf("%s is in use by another process", path)
	}
	return os.Remove(path)
}

type logWriter struct{ log logr.Logger }

func (l logWriter) Write(p []byte) (int, error) {
	l.log.V(1).Info(strings.TrimSpace(string(p)))
	return len(p), nil
}
