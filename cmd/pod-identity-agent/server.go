package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/ekslink/ekslink/internal/cli"
	"github.com/ekslink/ekslink/manifest/flagname"
	"github.com/ekslink/ekslink/podidentity"
)

type serverOptions struct {
	clusterName     string
	region          string
	endpoint        string
	fips            bool
	bindHosts       []string
	port            int
	probeAddr       string
	metricsAddr     string
	cacheSize       int
	serveSkew       time.Duration
	refreshBefore   time.Duration
	idleTimeout     time.Duration
	refreshWorkers  int
	upstreamTimeout time.Duration
	attemptTimeout  time.Duration
	maxAttempts     int
	rate            float64
	burst           int
	missWait        time.Duration
	throttleTTL     time.Duration
	refusalTTL      time.Duration
	maxTokenBytes   int
	bindRetry       time.Duration
	maxRetention    time.Duration
	rotateCreds     bool
	verbosity       verbosity
	fairness        fairnessOptions
	web             webIdentityFlags // webidentity.go
}

func newServerCommand() *cobra.Command { return newServerCommandWith(runServer) }

// newServerCommandWith builds the server command around run (runServer; tests inspect the parsed
// options instead).
func newServerCommandWith(run func(context.Context, *serverOptions) error) *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Serve /v1/credentials on the agent addresses",
		Long: `Serve GET /v1/credentials on every bind host that can be bound (the others are logged and
retried), /healthz and /readyz on --probe-addr (readiness follows EKS Auth health, liveness does
not), and /metrics on --metrics-addr. AWS credentials (the node role) and region come from the
default AWS SDK chain (with --rotate-credentials: the shared credentials file, re-read as it is
rewritten); AWS_ENDPOINT_URL_EKS_AUTH overrides the EKS Auth endpoint.

--backend=web-identity serves clusters that are not EKS: no node credentials are needed; each
pod's token is checked against the API server's keys and its pod (--kubeconfig, else the in-cluster
configuration; --node-name), the role comes from the associations ConfigMap
(--associations-configmap, managed with "ekslink pod-identity association"), and STS
AssumeRoleWithWebIdentity exchanges the pod's token (AWS_ENDPOINT_URL_STS overrides the endpoint).
The agent then needs get/list/watch on pods and on that ConfigMap.

The upstream agent's command line (aws/eks-pod-identity-agent, as its chart and the EKS add-on pass
it) is accepted as is: --endpoint, --max-cache-size, --max-service-qps and --v are aliases of
--eks-auth-endpoint, --cache-size, --rate and -v/--verbosity; -v takes trace, debug, info, warn,
error, panic or a number; --probe-port sets the port of --probe-addr; --metrics-address and
--metrics-port replace --metrics-addr (default 0.0.0.0:2705 once either is given). An ekslink
address flag given together with the upstream flags must name the same address. "true" after a
boolean flag ("--rotate-credentials" "true", as the upstream chart renders it) is accepted. Caching
cannot be turned off: 0 for --max-cache-size or --max-credential-retention-before-renewal is refused.`,
		Args: boolArgsOnly,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.resolveUpstreamFlags(cmd.Flags()); err != nil {
				return err
			}
			return run(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	fs.SetNormalizeFunc(aliasNormalizer)
	fs.StringVarP(&o.clusterName, flagname.ClusterName, "c", "", "name of the EKS cluster (required) [env EKS_CLUSTER_NAME]")
	fs.StringVar(&o.region, flagname.Region, "", "AWS region of the cluster (default: the SDK's, e.g. AWS_REGION or IMDS)")
	fs.StringVar(&o.endpoint, "eks-auth-endpoint", "", "EKS Auth endpoint URL (default: AWS_ENDPOINT_URL_EKS_AUTH, else https://eks-auth.<region>.api.aws); alias --endpoint")
	fs.BoolVar(&o.fips, "fips", false, "use the FIPS EKS Auth endpoint")
	fs.StringSliceVarP(&o.bindHosts, flagname.BindHosts, "b", []string{podidentity.AgentIPv4, "[" + podidentity.AgentIPv6 + "]"}, "hosts to serve credentials on, comma-separated or repeated")
	fs.IntVarP(&o.port, flagname.Port, "p", 80, "port of the credential listeners")
	fs.StringVar(&o.probeAddr, flagname.ProbeAddr, "127.0.0.1:2703", "address of /healthz and /readyz (empty: off)")
	fs.Int("probe-port", 2703, "port of /healthz and /readyz on 127.0.0.1 (upstream agent's flag; sets the port of --probe-addr)")
	fs.StringVar(&o.metricsAddr, flagname.MetricsAddr, "127.0.0.1:2705", "address of /metrics (empty: off)")
	fs.String("metrics-address", "0.0.0.0", "host of /metrics (upstream agent's flag; with --metrics-port it replaces --metrics-addr)")
	fs.Int("metrics-port", 2705, "port of /metrics (upstream agent's flag; with --metrics-address it replaces --metrics-addr)")
	fs.IntVar(&o.cacheSize, "cache-size", podidentity.DefaultCacheSize, "maximum number of cached tokens (LRU); alias --max-cache-size")
	fs.DurationVar(&o.maxRetention, "max-credential-retention-before-renewal", 0, "renew cached credentials at the latest this long after they were fetched (upstream agent's flag, which defaults to 3h; 0: only --refresh-before applies) [env POD_IDENTITY_MAX_CREDENTIAL_RETENTION]")
	fs.DurationVar(&o.serveSkew, "serve-skew", podidentity.DefaultServeSkew, "stop serving cached credentials this long before they expire")
	fs.DurationVar(&o.refreshBefore, "refresh-before", podidentity.DefaultRefreshBefore, "refresh credentials in the background this long before expiry")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", podidentity.DefaultIdleTimeout, "stop refreshing tokens not presented for this long")
	fs.IntVar(&o.refreshWorkers, "refresh-workers", podidentity.DefaultRefreshWorkers, "background refresh workers")
	fs.DurationVar(&o.upstreamTimeout, "upstream-timeout", podidentity.DefaultUpstreamTimeout, "bound of one EKS Auth exchange including retries (then 504)")
	fs.DurationVar(&o.attemptTimeout, "attempt-timeout", 2*time.Second, "bound of one EKS Auth HTTP attempt")
	fs.IntVar(&o.maxAttempts, "max-attempts", 3, "EKS Auth attempts per exchange (throttling, 5xx, timeouts are retried with jitter)")
	fs.Float64Var(&o.rate, "rate", podidentity.DefaultRate, "EKS Auth calls per second from this node; alias --max-service-qps")
	fs.IntVar(&o.burst, "burst", podidentity.DefaultBurst, "EKS Auth call burst; refreshes only use the upper half")
	fs.DurationVar(&o.missWait, "miss-wait", podidentity.DefaultMissWait, "how long a cache miss waits for the rate budget before 429")
	fs.DurationVar(&o.throttleTTL, "throttle-ttl", podidentity.DefaultThrottleTTL, "how long an EKS Auth throttle is cached per token")
	fs.DurationVar(&o.refusalTTL, "refusal-ttl", podidentity.DefaultRefusalTTL, "how long an EKS Auth refusal (bad token, denied, no association) is repeated per token (negative: off)")
	fs.IntVar(&o.maxTokenBytes, "max-token-bytes", podidentity.DefaultMaxTokenBytes, "largest accepted token")
	fs.DurationVar(&o.bindRetry, "bind-retry-interval", 30*time.Second, "retry bind hosts that failed this often (0: never)")
	fs.BoolVar(&o.rotateCreds, flagname.RotateCredentials, false, "sign with the keys of the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, profile default) and follow its rewrites (EKS hybrid nodes); while it cannot be read nothing is signed and /readyz fails")
	addVerbosityFlag(fs, &o.verbosity)
	o.fairness.register(fs)
	o.web.register(fs)
	cli.BindEnv(cmd, envPrefix)
	return cmd
}

func runServer(ctx context.Context, o *serverOptions) error {
	log := cli.NewLogger(os.Stderr, int(o.verbosity))
	if o.clusterName == "" {
		return fmt.Errorf("--cluster-name (EKS_CLUSTER_NAME) is required")
	}
	if len(o.bindHosts) == 0 {
		return fmt.Errorf("--bind-hosts is empty")
	}
	// The region falls back to the instance's (IMDS) only when nothing else names one.
	loadOpts := []func(*config.LoadOptions) error{config.WithEC2IMDSRegion()}
	if o.region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.region))
	}
	reg := cli.NewRegistry()
	var nodeCreds *podidentity.SharedCredentialsFile
	if o.rotateCreds {
		var err error
		nodeCreds, err = podidentity.NewSharedCredentialsFile(ctx, podidentity.SharedCredentialsOptions{Logger: log.WithName("node-credentials"), Registerer: reg})
		if err != nil {
			return err
		}
		log.Info("credentials rotation enabled: signing with the shared credentials file, re-read on every change and every minute", "file", nodeCreds.File())
		// The SDK does not resolve its own chain when a provider is given.
		loadOpts = append(loadOpts, config.WithCredentialsProvider(nodeCreds))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return fmt.Errorf("loading AWS configuration: %w", err)
	}
	if nodeCreds != nil {
		// Not behind the SDK's credentials cache: a rewrite is used from the next call on.
		cfg.Credentials = nodeCreds
	}
	var upstream podidentity.Upstream
	describe := []any{"backend", o.web.backend}
	switch o.web.backend {
	case backendWebIdentity:
		if upstream, err = o.web.start(ctx, cfg, log, reg); err != nil {
			return err
		}
		describe = append(describe, "region", cfg.Region, "associations", o.web.associations, "node", o.web.nodeName)
	case backendEKSAuth:
		maxAttempts := o.maxAttempts
		client, err := podidentity.NewFromConfig(cfg, func(po *podidentity.Options) {
			if o.endpoint != "" {
				po.BaseEndpoint = aws.String(o.endpoint)
			}
			po.UseFIPS = o.fips
			po.AttemptTimeout = o.attemptTimeout
			po.UserAgent = "pod-identity-agent"
			po.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.MaxAttempts = maxAttempts })
		})
		if err != nil {
			return err
		}
		upstream = client
		describe = append(describe, "region", client.Region(), "eksAuthEndpoint", client.Endpoint())
	default:
		return fmt.Errorf("--backend %q: want %s or %s", o.web.backend, backendEKSAuth, backendWebIdentity)
	}
	srv, err := podidentity.NewServer(upstream, o.fairness.apply(podidentity.ServerOptions{
		ClusterName:     o.clusterName,
		MaxRetention:    o.maxRetention,
		MaxTokenBytes:   o.maxTokenBytes,
		CacheSize:       o.cacheSize,
		ServeSkew:       o.serveSkew,
		RefreshBefore:   o.refreshBefore,
		IdleTimeout:     o.idleTimeout,
		RefreshWorkers:  o.refreshWorkers,
		UpstreamTimeout: o.upstreamTimeout,
		ThrottleTTL:     o.throttleTTL,
		RefusalTTL:      o.refusalTTL,
		Rate:            o.rate,
		Burst:           o.burst,
		MissWait:        o.missWait,
		Logger:          log.WithName("podidentity"),
		Registerer:      reg,
	}))
	if err != nil {
		return err
	}
	defer srv.Close()
	log.Info("starting", append(describe, "cluster", o.clusterName, "bindHosts", o.bindHosts, "port", o.port)...)

	addrs := make([]string, 0, len(o.bindHosts))
	for _, h := range o.bindHosts {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(h), "["), "]")
		if h == "" {
			continue
		}
		addrs = append(addrs, net.JoinHostPort(h, strconv.Itoa(o.port)))
	}

	var wg sync.WaitGroup
	errc := make(chan error, 3)
	side := func(name, addr string, h http.Handler) error {
		if addr == "" {
			return nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s listener: %w", name, err)
		}
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(sctx)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.Info("serving", "endpoint", name, "addr", ln.Addr().String())
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
		return nil
	}
	probes := http.NewServeMux()
	probes.Handle("GET /healthz", srv.LivenessHandler())
	probes.Handle("GET /readyz", readiness(srv, nodeCreds))
	metricsMux := http.NewServeMux()
	metricsMux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// The upstream agent's metrics server answers its probes too (pkg/server/server.go).
	metricsMux.Handle("GET /healthz", srv.LivenessHandler())
	metricsMux.Handle("GET /readyz", readiness(srv, nodeCreds))
	if o.probeAddr != "" && o.probeAddr == o.metricsAddr {
		probes.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		o.metricsAddr = ""
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if nodeCreds != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodeCreds.Run(ctx)
		}()
	}
	if err := side("probes", o.probeAddr, probes); err != nil {
		return err
	}
	if err := side("metrics", o.metricsAddr, metricsMux); err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeAddrs(ctx, addrs, o.bindRetry) }()
	select {
	case err = <-serveErr:
		cancel()
	case err = <-errc:
		cancel()
		<-serveErr
	case <-ctx.Done():
		err = <-serveErr
	}
	wg.Wait()
	if err == nil {
		log.Info("stopped")
	}
	return err
}
