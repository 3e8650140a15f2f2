package main

// Rotated-key sync for the connector.
//
// The SSM agent rotates its key every 7 days and rewrites Vault/Store/RegistrationKey in place; the
// new key must reach the state Secret before the vault's emptyDir is lost, or the cluster is locked
// out. Two ways to run the sync:
//
//   - standalone: "connector sync" (newSyncCommand), serving /healthz, /readyz and /metrics;
//   - inside the proxy process (wired by main.go / proxy.go, not here):
//
//	var ks keySyncFlags
//	addKeySyncFlags(proxyCmd.Flags(), &ks)                 // --key-sync, --vault-dir, --state-*, ...
//	ready, err := startKeySync(ctx, logger, registry, ks)   // runs until ctx ends
//	hooks.extraReadyChecks = append(hooks.extraReadyChecks, ready)
//
//     startKeySync returns a nil ready func and no error when --key-sync=false. Call
//     applyKeySyncEnv(cmd.Flags()) in the command's PreRunE for the CONNECTOR_* environment
//     fallbacks (the proxy's own envFallback call covers CONNECTOR_*, but not POD_NAME).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
	fs.BoolVar(&o.enabled, "key-sync", true, "copy keys the SSM agent rotates in the vault into the state Secret [env CONNECTOR_KEY_SYNC]")
	fs.DurationVar(&o.interval, "key-sync-interval", 30*time.Second, "periodic vault check in addition to file events [env CONNECTOR_KEY_SYNC_INTERVAL]")
	fs.DurationVar(&o.maxBackoff, "key-sync-max-backoff", time.Minute, "longest pause between retries of a failed sync (retries never stop) [env CONNECTOR_KEY_SYNC_MAX_BACKOFF]")
	fs.DurationVar(&o.checkTimeout, "key-sync-timeout", 30*time.Second, "deadline of one check including the Secret write [env CONNECTOR_KEY_SYNC_TIMEOUT]")
	addStateFlags(fs, &o.stateFlags)
}

// applyKeySyncEnv applies the environment fallbacks of the flags in fs (CONNECTOR_<UPPER_SNAKE>,
// and POD_NAME for --pod-name).
func applyKeySyncEnv(fs *pflag.FlagSet) error {
	return envFallback(fs, false, map[string][]string{"pod-name": {"POD_NAME"}})
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
	return registration.NewKeySync(registration.KeySyncOptions{
		VaultDir: o.vaultDir, Store: store, Logger: log, Registerer: reg,
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
	healthAddr string
	verbosity  int
}

// newSyncCommand is the standalone "sync" role.
func newSyncCommand() *cobra.Command { return newSyncCommandWith(nil) }

// newSyncCommandWith is newSyncCommand telling listening the health server's address (tests).
func newSyncCommandWith(listening func(net.Addr)) *cobra.Command {
	o := &syncOptions{}
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Copy keys the SSM agent rotates in its vault into the state Secret, forever",
		Long: `Watch the SSM agent's vault (file events plus a periodic check) and save every complete,
valid RegistrationKey the agent rotates into the state Secret <state-secret-prefix>-<ordinal>,
keeping the previous key. Failures are retried forever with backoff; /readyz fails while the
vault holds a key the Secret does not. Serves /healthz, /readyz and /metrics on --health-addr.

Every flag can also be set with the environment variable shown in its description.`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return applyKeySyncEnv(cmd.Flags()) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSync(cmd.Context(), o, newLogger(cmd.ErrOrStderr(), o.verbosity, "sync"), listening)
		},
	}
	fs := cmd.Flags()
	addKeySyncFlags(fs, &o.keySyncFlags)
	fs.StringVar(&o.healthAddr, "health-addr", ":8082", "address of /healthz, /readyz and /metrics (empty: off) [env CONNECTOR_HEALTH_ADDR]")
	fs.IntVarP(&o.verbosity, "v", "v", 0, "log verbosity [env CONNECTOR_V]")
	return cmd
}

func runSync(ctx context.Context, o *syncOptions, log logr.Logger, listening func(net.Addr)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o.enabled = true
	ks, err := newKeySync(log, reg, o.keySyncFlags)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var srv *http.Server
	if o.healthAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if err := ks.Ready(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, "ok\n")
		})
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		ln, err := net.Listen("tcp", o.healthAddr)
		if err != nil {
			return fmt.Errorf("health listener: %w", err)
		}
		if listening != nil {
			listening(ln.Addr())
		}
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error(err, "health server failed")
				cancel()
			}
		}()
	}
	err = ks.Run(ctx)
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}
	log.Info("key sync stopped")
	return err
}
