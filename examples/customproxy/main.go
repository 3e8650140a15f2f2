package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/impersonation"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newCommand(nil).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "customproxy:", err)
		stop()
		os.Exit(1)
	}
}

type options struct {
	listen, tlsCert, tlsKey, clientCA string
	apiServer, tokenFile, caFile      string
}

// newCommand builds the command; listening (tests) is told the address once it listens.
func newCommand(listening func(net.Addr)) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:           "customproxy",
		Short:         "mTLS front door to the Kubernetes API that impersonates the IAM ARN in the client certificate",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		// The environment fallback follows the ekslink binaries' convention (internal/cli, which an
		// example copied out of this module cannot import): CUSTOMPROXY_<FLAG_NAME>, the command
		// line wins, an empty variable counts as unset, a bad value names the variable and the flag.
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			var errs []error
			cmd.Flags().VisitAll(func(f *pflag.Flag) {
				env := "CUSTOMPROXY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
				if v := os.Getenv(env); v != "" && !f.Changed {
					if err := cmd.Flags().Set(f.Name, v); err != nil {
						errs = append(errs, fmt.Errorf("environment variable %s (for --%s): %w", env, f.Name, err))
					}
				}
			})
			return errors.Join(errs...)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), o, cmd.ErrOrStderr(), listening)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.listen, "listen", ":8443", "HTTPS listen address [env CUSTOMPROXY_LISTEN]")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "server certificate (PEM) [env CUSTOMPROXY_TLS_CERT]")
	fs.StringVar(&o.tlsKey, "tls-key", "", "server key (PEM) [env CUSTOMPROXY_TLS_KEY]")
	fs.StringVar(&o.clientCA, "client-ca", "", "CA bundle that signs client certificates (PEM) [env CUSTOMPROXY_CLIENT_CA]")
	fs.StringVar(&o.apiServer, "api-server", "https://kubernetes.default.svc", "API server URL [env CUSTOMPROXY_API_SERVER]")
	fs.StringVar(&o.tokenFile, "token-file", "/var/run/secrets/kubernetes.io/serviceaccount/token", "the proxy's service-account token [env CUSTOMPROXY_TOKEN_FILE]")
	fs.StringVar(&o.caFile, "ca-file", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "CA verifying the API server [env CUSTOMPROXY_CA_FILE]")
	return cmd
}

// certIdentity takes the identity from the verified client certificate: exactly one URI SAN
// that is an ARN, or else an ARN common name.
func certIdentity(r *http.Request) (string, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return "", fmt.Errorf("%w: no verified client certificate", impersonation.ErrNoIdentity)
	}
	leaf := r.TLS.VerifiedChains[0][0]
	var arns []string
	for _, u := range leaf.URIs {
		if u.Scheme == "arn" {
			arns = append(arns, u.String())
		}
	}
	switch {
	case len(arns) == 1:
		return arns[0], nil
	case len(arns) > 1:
		return "", fmt.Errorf("%w: certificate has %d ARN URIs", impersonation.ErrAmbiguousIdentity, len(arns))
	case strings.HasPrefix(leaf.Subject.CommonName, "arn:"):
		return leaf.Subject.CommonName, nil
	}
	return "", fmt.Errorf("%w: certificate %q carries no IAM ARN", impersonation.ErrNoIdentity, leaf.Subject.CommonName)
}

func run(ctx context.Context, o *options, stderr io.Writer, listening func(net.Addr)) error {
	log := logr.FromSlogHandler(slog.NewJSONHandler(stderr, nil))
	cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	caPEM, err := os.ReadFile(o.clientCA)
	if err != nil {
		return fmt.Errorf("client CA: %w", err)
	}
	clients := x509.NewCertPool()
	if !clients.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("client CA %s holds no certificate", o.clientCA)
	}
	h, err := impersonation.NewHandler(impersonation.Config{
		Upstream: &rest.Config{Host: o.apiServer, BearerTokenFile: o.tokenFile, TLSClientConfig: rest.TLSClientConfig{CAFile: o.caFile}},
		Identity: certIdentity,
		Logger:   log,
	})
	if err != nil {
		return err
	}
	defer h.Close()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    clients,
		},
	}
	if listening != nil {
		listening(ln.Addr())
	}
	log.Info("serving", "address", ln.Addr().String(), "upstream", o.apiServer)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	return nil
}
