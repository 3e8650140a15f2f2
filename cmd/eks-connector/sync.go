package main

// Rotated-key sync for the connector.
//
// The SSM agent rotates its key every 7 days and rewrites Vault/Store/RegistrationKey in place; the
// new key must reach the state Secret before the vault's emptyDir is lost, or the cluster is locked
// out. Two ways to run the sync:
//
//   - standalone: "eks-connector sync" (newSyncCommand), serving /healthz and /readyz, and /metrics
//     on loopback unless told otherwise;
//   - inside the proxy process (wired by main.go / proxy.go, not here):
//
//	var ks keySyncFlags
//	addKeySyncFlags(proxyCmd.Flags(), &ks)                 // --key-sync, --vault-dir, --state-*, ...
//	ready, err := startKeySync(ctx, logger, registry, ks)   // runs until ctx ends
//	hooks.extraReadyChecks = append(hooks.extraReadyChecks, ready)
//
//     startKeySync returns a nil ready func and no error when --key-sync=false. The command's
//     cli.BindEnv covers the environment fallbacks of these flags too.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ekslink/ekslink/internal/cli"
	"github.com/ekslink/ekslink/manifest/flagname"
	"github.com/ekslink/ekslink/registration"
)

// keySyncFlags configure the key sync.
type keySyncFlags struct {
	stateFlags
	enabled      bool
	interval     time.Duration
	maxBackoff   time.Duration
	checkTimeout time.Duration
}

// addKeySyncFlags adds the key-sync flags (--key-sync, --vault-dir, --state-secret-prefix,
// --state-namespace, --pod-name, --kubeconfig, --state-encryption-key-file, --key-sync-interval,
// --key-sync-max-backoff, --key-sync-timeout) to fs.
func addKeySyncFlags(fs *pflag.FlagSet, o *keySyncFlags) {
	fs.BoolVar(&o.enabled, "key-sync", true, "copy keys the SSM agent rotates in the vault into the state Secret")
	fs.DurationVar(&o.interval, "key-sync-interval", 30*time.Second, "periodic vault check in addition to file events")
	fs.DurationVar(&o.maxBackoff, "key-sync-max-backoff", time.Minute, "longest pause between retries of a failed sync (retries never stop)")
	fs.DurationVar(&o.checkTimeout, "key-sync-timeout", 30*time.Second, "deadline of one check including the Secret write")
	addStateFlags(fs, &o.stateFlags)
}

// newKeySync validates o and builds the KeySync without running it.
func newKeySync(log logr.Logger, reg prometheus.Registerer, o keySyncFlags) (*registration.KeySync, error) {
	stateName, problems := o.stateFlags.resolve()
	if o.interval <= 0 || o.maxBackoff <= 0 || o.checkTimeout <= 0 {
		problems = append(problems, errors.New("--key-sync-interval, --key-sync-max-backoff and --key-sync-timeout must be positive"))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("invalid key-sync configuration:\n%w", err)
	}
	store, storeDesc, err := o.store(stateName)
	if err != nil {
		return nil, err
	}
	log.Info("key sync configured", "vaultDir", o.vaultDir, "stateStore", storeDesc)
	return registration.NewKeySync(store, o.vaultDir, registration.KeySyncOptions{
		Logger: log, Registerer: reg,
		Interval: o.interval, MaxBackoff: o.maxBackoff, CheckTimeout: o.checkTimeout,
	})
}

// startKeySync starts the key sync in the background until ctx ends and returns its readiness
// check (nil error: the vault's key is in the state Secret). With --key-sync=false it returns a nil
// func and no error.
func startKeySync(ctx context.Context, log logr.Logger, reg prometheus.Registerer, o keySyncFlags) (ready func() error, err error) {
	if !o.enabled {
		return nil, nil
	}
	ks, err := newKeySync(log, reg, o)
	if err != nil {
		return nil, err
	}
	go func() {
		if err := ks.Run(ctx); err != nil {
			log.Error(err, "key sync stopped")
		}
	}()
	return ks.Ready, nil
}

type syncOptions struct {
	keySyncFlags
	healthAddr  string
	metricsAddr string
	verbosity   int
}

// Default addresses of the standalone sync: probes where the kubelet can reach them, metrics on
// loopback only (as the proxy's), on ports that do not collide with the proxy's 8080 and 8081.
const (
	defaultSyncHealthAddr  = ":8082"
	defaultSyncMetricsAddr = "127.0.0.1:8083"
)

// newSyncCommand is the standalone "sync" role.
func newSyncCommand() *cobra.Command { return newSyncCommandWith(nil) }

// newSyncCommandWith is newSyncCommand telling listening each server's address, "health" and
// "metrics" (tests).
func newSyncCommandWith(listening func(name string, addr net.Addr)) *cobra.Command {
	o := &syncOptions{}
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Copy keys the SSM agent rotates in its vault into the state Secret, forever",
		Long: `Watch the SSM agent's vault (file events plus a periodic check) and save every complete,
valid RegistrationKey the agent rotates into the state Secret <state-secret-prefix>-<ordinal>,
keeping the previous key. Failures are retried forever with backoff; /readyz fails while the
vault holds a key the Secret does not. Serves /healthz and /readyz on --health-addr and /metrics on
--metrics-addr (loopback by default; give both the same address to serve them together).

Every flag can also be set with the environment variable shown in its description.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSync(cmd.Context(), o, cli.NewLogger(cmd.ErrOrStderr(), o.verbosity).WithName("sync"), listening)
		},
	}
	fs := cmd.Flags()
	addKeySyncFlags(fs, &o.keySyncFlags)
	fs.StringVar(&o.healthAddr, flagname.HealthAddr, defaultSyncHealthAddr, "address of /healthz and /readyz (empty: off)")
	fs.StringVar(&o.metricsAddr, flagname.MetricsAddr, defaultSyncMetricsAddr, "address of /metrics (empty: off)")
	fs.IntVarP(&o.verbosity, "v", "v", 0, "log verbosity")
	cli.BindEnv(cmd, envPrefix)
	return cmd
}

func runSync(ctx context.Context, o *syncOptions, log logr.Logger, listening func(name string, addr net.Addr)) error {
	if err := checkProbeAddr("--health-addr", o.healthAddr); err != nil {
		return err
	}
	reg := cli.NewRegistry()
	o.enabled = true
	ks, err := newKeySync(log, reg, o.keySyncFlags)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	health := http.NewServeMux()
	health.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	health.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		// The detail (which write failed, and why) is in the log; KeySync logs each failure.
		if ks.Ready() != nil {
			http.Error(w, "not ready: the vault's key is not in the state Secret yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	muxes := map[string]*http.ServeMux{}
	addrs := map[string]string{}
	if o.healthAddr != "" {
		muxes["health"], addrs["health"] = health, o.healthAddr
	}
	switch {
	case o.metricsAddr == "":
	case o.metricsAddr == o.healthAddr && !strings.HasSuffix(o.metricsAddr, ":0"):
		health.Handle("/metrics", metrics) // one address for both (":0" means two ephemeral ports)
	default:
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics)
		muxes["metrics"], addrs["metrics"] = mux, o.metricsAddr
	}
	listeners := map[string]net.Listener{}
	for name, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range listeners {
				_ = l.Close()
			}
			return fmt.Errorf("%s listener: %w", name, err)
		}
		listeners[name] = ln
	}
	var servers []*http.Server
	for name, ln := range listeners {
		if listening != nil {
			listening(name, ln.Addr())
		}
		log.Info("serving", "server", name, "address", ln.Addr().String())
		srv := &http.Server{Handler: muxes[name], ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error(err, "server failed", "server", name)
				cancel()
			}
		}()
	}
	err = ks.Run(ctx)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	for _, srv := range servers {
		_ = srv.Shutdown(sctx)
	}
	log.Info("key sync stopped")
	return err
}
