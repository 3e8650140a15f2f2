package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ekslink/ekslink/internal/cli"
	"github.com/ekslink/ekslink/podidentity/association"
	"github.com/ekslink/ekslink/webhook"
)

// shutdownGrace is how long in-flight admissions may finish after SIGTERM (the upstream's 10 s).
const shutdownGrace = 10 * time.Second

// run serves until ctx ends (SIGTERM), then drains.
func run(ctx context.Context, log logr.Logger, o *options) error {
	if err := o.check(); err != nil {
		return err
	}
	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return err
	}
	restCfg, err := clientcmd.BuildConfigFromFlags(o.kubeAPI, o.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubernetes client configuration (--kubeconfig %q, --kube-api %q, else in-cluster): %w", o.kubeconfig, o.kubeAPI, err)
	}
	restCfg.QPS, restCfg.Burst = 50, 50 // the upstream's
	restCfg.UserAgent = "pod-identity-webhook (ekslink)"
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}

	reg := cli.NewRegistry()
	var selfCerts *webhook.SelfCerts
	if o.certSecret != "" {
		ns, name, _ := strings.Cut(o.certSecret, "/")
		selfCerts, err = webhook.NewSelfCerts(client,
			types.NamespacedName{Namespace: ns, Name: name}, types.NamespacedName{Namespace: o.namespace, Name: o.serviceName},
			webhook.SelfCertsOptions{WebhookConfigName: o.webhookConfigName, Logger: log.WithName("certs"), Registerer: reg})
		if err != nil {
			return err
		}
		if err := selfCerts.Sync(ctx); err != nil {
			return fmt.Errorf("--cert-secret %s: %w", o.certSecret, err)
		}
		tlsCfg.GetCertificate = selfCerts.GetCertificate
	} else {
		certs, err := newCertFiles(o.tlsCert, o.tlsKey, log)
		if err != nil {
			return err
		}
		tlsCfg.GetCertificate = certs.get
	}

	opts := webhook.Options{Logger: log, Registerer: reg, LookupTimeout: o.lookupGracePeriod, LookupLive: o.lookup == lookupLive, ResyncPeriod: o.resyncPeriod, IdentitiesFile: o.identitiesFile}
	if o.watchConfigMap {
		opts.ConfigMapNamespace = o.namespace
	}
	if ns, name, ok := strings.Cut(o.associations, "/"); ok {
		opts.Associations = &association.Options{Namespace: ns, Name: name}
	}
	h, err := webhook.NewHandler(client, o.cfg, opts)
	if err != nil {
		return err
	}

	draining := make(chan struct{})
	healthz := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	readyz := func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-draining:
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		default:
		}
		if err := h.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}
	mutate, err := instrument(reg, h)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(webhook.MutatePath, mutate)
	mux.HandleFunc("/healthz", healthz)
	mux.HandleFunc("/readyz", readyz)
	metricsMux := http.NewServeMux()
	metricsMux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	metricsMux.HandleFunc("/healthz", healthz)
	metricsMux.HandleFunc("/readyz", readyz)

	srv := &http.Server{Handler: mux, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second}
	metricsSrv := &http.Server{Handler: metricsMux, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(o.port))
	if err != nil {
		return fmt.Errorf("--port: %w", err)
	}
	mln, err := net.Listen("tcp", ":"+strconv.Itoa(o.metricsPort))
	if err != nil {
		ln.Close()
		return fmt.Errorf("--metrics-port: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// Serving starts at once (lookups go live until the cache syncs); /readyz waits for it.
		if err := h.Start(gctx); err != nil && gctx.Err() == nil {
			return err
		}
		return nil
	})
	if selfCerts != nil {
		g.Go(func() error { selfCerts.Run(gctx); return nil })
	}
	g.Go(func() error { return serve(srv.ServeTLS(ln, "", "")) })
	g.Go(func() error { return serve(metricsSrv.Serve(mln)) })
	g.Go(func() error {
		<-gctx.Done()
		close(draining)
		log.Info("shutting down: draining in-flight admissions", "grace", shutdownGrace.String())
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		return errors.Join(srv.Shutdown(sctx), metricsSrv.Shutdown(sctx))
	})
	log.Info("serving", "port", o.port, "metricsPort", o.metricsPort, "annotationPrefix", o.cfg.AnnotationPrefix,
		"watchConfigMap", o.watchConfigMap, "identitiesFile", o.identitiesFile)
	err = g.Wait()
	if ctx.Err() != nil && err == nil {
		log.Info("stopped")
	}
	return err
}

func serve(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
