package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/ekslink/ekslink/internal/atomicfile"
	"github.com/ekslink/ekslink/internal/cli"
	"github.com/ekslink/ekslink/internal/filewatch"
	"github.com/ekslink/ekslink/internal/regularfile"
	"github.com/ekslink/ekslink/oidc"
	"github.com/ekslink/ekslink/oidc/publish"
)

// oidcEnvPrefix prefixes the environment fallback of every oidc flag: --key-file reads
// EKSLINK_OIDC_KEY_FILE when not given.
const oidcEnvPrefix = "EKSLINK_OIDC_"

// newOIDCCommand is `ekslink oidc`: self-hosted IRSA without openssl, jq or hand-written JSON.
func newOIDCCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "oidc",
		Short: "Self-hosted IRSA: keys, discovery document, JWKS, thumbprint, trust policy, token check, serving and publishing",
		Long: `Self-hosted IRSA (IAM roles for service accounts) for any cluster.

Documents are byte-identical to what kube-apiserver serves at /.well-known/openid-configuration and
/openid/v1/jwks for the same --service-account-issuer, --service-account-jwks-uri and key files.
Output goes to stdout only on success; errors go to stderr with a non-zero exit status.
Every flag can also be set through an environment variable, shown in each flag's help.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.AddCommand(oidcKeygenCommand(), oidcDiscoveryCommand(), oidcJWKSCommand(), oidcThumbprintCommand(),
		oidcTrustPolicyCommand(), oidcVerifyTokenCommand(), oidcServeCommand(), oidcPublishCommand())
	// A leftover environment variable must never overwrite key files or widen a bucket on its own.
	cli.BindEnv(cmd, oidcEnvPrefix, "force", "unblock-public-policy")
	return cmd
}

// oidcKeyFlags are the flags that select and render keys.
type oidcKeyFlags struct {
	keyFiles       []string
	issuer         string
	jwksURI        string
	legacyEmptyKID bool
	webhookFields  bool
}

func (k *oidcKeyFlags) register(c *cobra.Command, withIssuer bool) {
	c.Flags().StringSliceVar(&k.keyFiles, "key-file", nil, "PEM (keys or certificates) or JWK/JWKS files; repeat or comma-separate")
	c.Flags().BoolVar(&k.legacyEmptyKID, "legacy-empty-kid", false, `also publish every key with "kid":"" (legacy: only for tokens from clusters older than Kubernetes 1.16)`)
	if withIssuer {
		c.Flags().StringVar(&k.issuer, "issuer", "", "issuer URL, exactly as in --service-account-issuer")
		c.Flags().StringVar(&k.jwksURI, "jwks-uri", "", "jwks_uri (default: issuer + /openid/v1/jwks), exactly as in --service-account-jwks-uri")
		c.Flags().BoolVar(&k.webhookFields, "webhook-fields", false, "add authorization_endpoint and claims_supported as in the pod-identity-webhook guide")
	}
}

func (k *oidcKeyFlags) documents(stderr io.Writer) (disc, jwks []byte, err error) {
	if k.issuer != "" {
		warnings, err := oidc.ValidateIssuer(k.issuer)
		if err != nil {
			return nil, nil, err
		}
		for _, w := range warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
	}
	if len(k.keyFiles) == 0 {
		return nil, nil, errors.New("--key-file is required")
	}
	keys, err := oidc.ParseKeyFiles(k.keyFiles...)
	if err != nil {
		return nil, nil, err
	}
	opts := oidc.DocumentOptions{JWKSURI: k.jwksURI, LegacyEmptyKID: k.legacyEmptyKID, WebhookFields: k.webhookFields}
	if k.issuer == "" {
		jwks, err = oidc.JWKS(keys, opts)
		return nil, jwks, err
	}
	return oidc.Documents(k.issuer, keys, opts)
}

func oidcKeygenCommand() *cobra.Command {
	var typ, dir, name string
	var force bool
	c := &cobra.Command{
		Use:   "keygen",
		Short: "Generate a service-account signing key pair (files mode 0600)",
		Long: `Writes <name>.key (PKCS#8, for --service-account-signing-key-file) and <name>.pub (PKIX, for
--service-account-key-file), both mode 0600, and prints the key id (kid) and paths as JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := oidc.GenerateKey(oidc.KeyType(typ))
			if err != nil {
				return err
			}
			priv, err := k.PrivateKeyPEM()
			if err != nil {
				return err
			}
			pub, err := k.PublicKeyPEM()
			if err != nil {
				return err
			}
			privPath, pubPath := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
			if !force {
				for _, p := range []string{privPath, pubPath} {
					if _, err := os.Stat(p); err == nil {
						return fmt.Errorf("%s exists; refusing to overwrite a signing key (use --force)", p)
					}
				}
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			write := oidcWriteFileAtomic
			if !force {
				// The check above is for a clear message; linking into place is what makes
				// sure a key that appeared meanwhile (another keygen) is never replaced.
				write = oidcWriteFileNew
			}
			if err := write(privPath, priv); err != nil {
				return err
			}
			if err := write(pubPath, pub); err != nil {
				if !force {
					_ = os.Remove(privPath) // ours: created just above, and useless without its .pub
				}
				return err
			}
			return oidcPrintJSON(cmd, map[string]string{"kid": k.ID, "alg": k.Algorithm, "privateKeyFile": privPath, "publicKeyFile": pubPath})
		},
	}
	c.Flags().StringVar(&typ, "type", string(oidc.RSA2048), "key type: rsa-2048, rsa-3072, rsa-4096, p-256, p-384 or p-521")
	c.Flags().StringVar(&dir, "out-dir", ".", "directory for the key files")
	c.Flags().StringVar(&name, "name", "sa", "base name of the key files")
	c.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	return c
}

// oidcWriteFileAtomic writes data with mode 0600 atomically, so a crash never leaves a truncated
// key.
func oidcWriteFileAtomic(path string, data []byte) error { return atomicfile.Write(path, data, 0o600) }

// oidcWriteFileNew is oidcWriteFileAtomic for a path that must not exist yet: the complete file
// is linked into place, which fails if anything is there.
func oidcWriteFileNew(path string, data []byte) error {
	if err := atomicfile.WriteNew(path, data, 0o600); err != nil {
		if errors.Is(err, atomicfile.ErrExist) {
			return fmt.Errorf("%s exists; refusing to overwrite a signing key (use --force)", path)
		}
		return err
	}
	return nil
}

func oidcDiscoveryCommand() *cobra.Command {
	var k oidcKeyFlags
	c := &cobra.Command{
		Use:   "discovery",
		Short: "Print the OIDC discovery document (exact bytes, no trailing newline)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if k.issuer == "" {
				return errors.New("--issuer is required")
			}
			disc, _, err := k.documents(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(disc)
			return err
		},
	}
	k.register(c, true)
	return c
}

func oidcJWKSCommand() *cobra.Command {
	var k oidcKeyFlags
	c := &cobra.Command{
		Use:   "jwks",
		Short: "Print the JWKS (exact bytes, no trailing newline)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, jwks, err := k.documents(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(jwks)
			return err
		},
	}
	k.register(c, false)
	return c
}

func oidcThumbprintCommand() *cobra.Command {
	var rawURL, chainFile, caFile string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "thumbprint",
		Short: "Print the IAM OIDC provider thumbprint (lowercase hex SHA-1 of the top intermediate CA)",
		Long: `Live (--url): connects to the URL's host over TLS with SNI, verifies the chain and hashes the
last non-root certificate the server sends. Offline (--chain-file): the same from a PEM chain, leaf
first. IAM accepts either case; lowercase is what EKS and the console store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var tp string
			var err error
			switch {
			case (rawURL == "") == (chainFile == ""):
				return errors.New("exactly one of --url and --chain-file is required")
			case chainFile != "":
				data, rerr := oidcReadFile(chainFile)
				if rerr != nil {
					return rerr
				}
				tp, err = oidc.ThumbprintFromPEM(data)
			default:
				opts := oidc.ThumbprintOptions{Dialer: &net.Dialer{Timeout: timeout}}
				if caFile != "" {
					pem, rerr := oidcReadFile(caFile)
					if rerr != nil {
						return rerr
					}
					opts.RootCAs = x509.NewCertPool()
					if !opts.RootCAs.AppendCertsFromPEM(pem) {
						return fmt.Errorf("%s: no certificates", caFile)
					}
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
				defer cancel()
				tp, err = oidc.Thumbprint(ctx, rawURL, opts)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tp)
			return err
		},
	}
	c.Flags().StringVar(&rawURL, "url", "", "issuer or jwks_uri to connect to")
	c.Flags().StringVar(&chainFile, "chain-file", "", "PEM certificate chain, leaf first")
	c.Flags().StringVar(&caFile, "ca-file", "", "PEM roots to verify the server with (default: system roots)")
	c.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "connection timeout")
	return c
}

func oidcTrustPolicyCommand() *cobra.Command {
	var o oidc.TrustPolicyOptions
	var account, partition string
	c := &cobra.Command{
		Use:   "trust-policy",
		Short: "Print an IAM role trust policy for a service account (sub and aud conditions)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.ProviderARN == "" {
				if account == "" {
					return errors.New("--provider-arn or --account-id is required")
				}
				arn, err := oidc.ProviderARN(partition, account, o.Issuer)
				if err != nil {
					return err
				}
				o.ProviderARN = arn
			}
			pol, err := oidc.TrustPolicy(o)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", pol)
			return err
		},
	}
	c.Flags().StringVar(&o.Issuer, "issuer", "", "issuer URL")
	c.Flags().StringVar(&o.ProviderARN, "provider-arn", "", "IAM OIDC provider ARN (default: built from --account-id, --partition and --issuer)")
	c.Flags().StringVar(&account, "account-id", "", "AWS account id of the provider")
	c.Flags().StringVar(&partition, "partition", "aws", "AWS partition (aws, aws-cn, aws-us-gov, ...)")
	c.Flags().StringVar(&o.Namespace, "namespace", "", "service account namespace")
	c.Flags().StringVar(&o.ServiceAccount, "service-account", "", "service account name (* or ? make the sub condition StringLike)")
	c.Flags().StringVar(&o.Audience, "audience", oidc.DefaultAudience, "required token audience")
	return c
}

func oidcVerifyTokenCommand() *cobra.Command {
	var k oidcKeyFlags
	var tokenFile, jwksFile string
	var discover bool
	var fetchTimeout time.Duration
	var exp oidc.Expect
	c := &cobra.Command{
		Use:   "verify-token",
		Short: "Verify a service-account token the way STS does and print its claims",
		Long: `Reads the token from --token-file ("-" for stdin), checks it against --jwks-file, the keys in
--key-file, or (--discover) the JWKS the issuer really publishes, fetched anonymously as STS does,
and prints the verified claims as JSON. A rejected token exits non-zero with the rule
that failed (algorithm, kid, signature, issuer, audience, expiry, subject).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokenFile == "" || exp.Issuer == "" {
				return errors.New("--token-file and --issuer are required")
			}
			var raw []byte
			var err error
			if tokenFile == "-" {
				raw, err = oidcReadAll("stdin", cmd.InOrStdin())
			} else {
				raw, err = oidcReadFile(tokenFile)
			}
			if err != nil {
				return err
			}
			var jwks []byte
			switch {
			case oidcBtoi(jwksFile != "")+oidcBtoi(len(k.keyFiles) > 0)+oidcBtoi(discover) != 1:
				return errors.New("use exactly one of --jwks-file, --key-file and --discover")
			case discover:
				ctx, cancel := context.WithTimeout(cmd.Context(), fetchTimeout)
				defer cancel()
				pub, err := oidc.Fetch(ctx, nil, exp.Issuer)
				if err != nil {
					return err
				}
				for _, w := range pub.Warnings {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
				}
				jwks = pub.JWKS
			case jwksFile != "":
				if jwks, err = oidcReadFile(jwksFile); err != nil {
					return err
				}
			default:
				if _, jwks, err = k.documents(cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			if exp.Leeway == 0 {
				exp.Leeway = -1 // the library reads 0 as "default"; --leeway 0 means none
			}
			claims, err := oidc.Verify(strings.TrimSpace(string(raw)), jwks, exp)
			if err != nil {
				return err
			}
			return oidcPrintJSON(cmd, claims)
		},
	}
	c.Flags().StringVar(&tokenFile, "token-file", "", `token file ("-" for stdin)`)
	c.Flags().StringVar(&jwksFile, "jwks-file", "", "JWKS to verify against")
	c.Flags().StringSliceVar(&k.keyFiles, "key-file", nil, "key files to verify against instead of --jwks-file")
	c.Flags().BoolVar(&discover, "discover", false, "fetch discovery and JWKS from the issuer, as STS does")
	c.Flags().DurationVar(&fetchTimeout, "timeout", 30*time.Second, "time limit for --discover's fetches")
	c.Flags().StringVar(&exp.Issuer, "issuer", "", "expected iss, byte for byte")
	c.Flags().StringVar(&exp.Audience, "audience", oidc.DefaultAudience, "audience the token must carry")
	c.Flags().StringVar(&exp.Subject, "subject", "", "expected sub (system:serviceaccount:<ns>:<name>); default: any service account")
	c.Flags().DurationVar(&exp.Leeway, "leeway", oidc.DefaultLeeway, "allowed clock skew for exp, nbf and iat (0 = none)")
	return c
}

// oidcMaxInput bounds every file the oidc commands read (tokens, JWKS, certificate chains).
const oidcMaxInput = 1 << 20

// oidcReadFile reads a regular file of at most oidcMaxInput bytes. A named pipe or a device is
// refused at once (opening a FIFO would otherwise block before any limit or signal applies).
func oidcReadFile(path string) ([]byte, error) {
	return regularfile.Read(path, oidcMaxInput)
}

// oidcReadAll reads r, failing rather than truncating or growing without bound past oidcMaxInput.
func oidcReadAll(name string, r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, oidcMaxInput+1))
	if err != nil {
		return nil, err
	}
	if len(data) > oidcMaxInput {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, oidcMaxInput)
	}
	return data, nil
}

func oidcBtoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func oidcPrintJSON(cmd *cobra.Command, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := cmd.OutOrStdout().Write(buf.Bytes())
	return err
}

func oidcLogger(cmd *cobra.Command) logr.Logger { return cli.NewLogger(cmd.ErrOrStderr(), 0) }

func oidcServeCommand() *cobra.Command {
	var k oidcKeyFlags
	var listen, certFile, keyFile string
	var reload time.Duration
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve the discovery document and JWKS over HTTP(S), reloading the key files",
		Long: `Serves the documents at the issuer's path + /.well-known/openid-configuration and at the
jwks_uri's path, with kube-apiserver's content types and Cache-Control, ETags, GET/HEAD only.
Key files are re-read when they change (file events in their directories, which include atomic
replaces and Kubernetes' ..data swap of a mounted Secret) and at least every --reload-interval, and
swapped in atomically (a broken file keeps the previous documents). /healthz, /readyz and /metrics are served too. SIGTERM shuts down gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if k.issuer == "" || len(k.keyFiles) == 0 {
				return errors.New("--issuer and --key-file are required")
			}
			if reload <= 0 {
				return fmt.Errorf("--reload-interval must be positive, got %s", reload)
			}
			if (certFile == "") != (keyFile == "") {
				return errors.New("--tls-cert-file and --tls-key-file go together")
			}
			log := oidcLogger(cmd)
			keys, err := oidc.ParseKeyFiles(k.keyFiles...)
			if err != nil {
				return err
			}
			opts := oidc.DocumentOptions{JWKSURI: k.jwksURI, LegacyEmptyKID: k.legacyEmptyKID, WebhookFields: k.webhookFields}
			h, err := oidc.NewHandler(k.issuer, keys, opts)
			if err != nil {
				return err
			}
			reg := cli.NewRegistry()
			reloads := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ekslink_oidc_key_reloads_total", Help: "Key file reloads by result."}, []string{"result"})
			keyCount := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ekslink_oidc_keys", Help: "Keys currently published."})
			requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ekslink_oidc_requests_total", Help: "Document requests by status code."}, []string{"code"})
			reg.MustRegister(reloads, keyCount, requests)
			keyCount.Set(float64(len(keys)))

			mux := http.NewServeMux()
			mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
			mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
			mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
			mux.Handle("/", promhttp.InstrumentHandlerCounter(requests, h))

			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
			if certFile != "" {
				// Load the certificate before listening: ServeTLS would leave the listener open
				// (and the reload loop running) when it cannot.
				cert, err := tls.LoadX509KeyPair(certFile, keyFile)
				if err != nil {
					return fmt.Errorf("TLS certificate: %w", err)
				}
				srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			defer ln.Close()
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel() // stops the reload loop whichever way serving ends
			changes := filewatch.Start(ctx, filewatch.Options{Files: k.keyFiles, Interval: reload, Debounce: 100 * time.Millisecond, Logger: log})
			go func() {
				for range changes {
					next, err := oidc.ParseKeyFiles(k.keyFiles...)
					if err == nil {
						err = h.SetKeys(next)
					}
					if err != nil {
						reloads.WithLabelValues("error").Inc()
						log.Error(err, "reloading keys; keeping the published documents")
						continue
					}
					reloads.WithLabelValues("ok").Inc()
					keyCount.Set(float64(len(next)))
				}
			}()
			errc := make(chan error, 1)
			go func() {
				if certFile != "" {
					errc <- srv.ServeTLS(ln, "", "")
				} else {
					errc <- srv.Serve(ln)
				}
			}()
			log.Info("serving OIDC documents", "addr", ln.Addr().String(), "issuer", k.issuer, "discoveryPath", h.DiscoveryPath(), "jwksPath", h.JWKSPath(), "keys", len(keys))
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			log.Info("shutting down")
			return srv.Shutdown(shutdown)
		},
	}
	k.register(c, true)
	c.Flags().StringVar(&listen, "listen", ":8080", "listen address")
	c.Flags().StringVar(&certFile, "tls-cert-file", "", "serve HTTPS with this certificate (STS requires https in front)")
	c.Flags().StringVar(&keyFile, "tls-key-file", "", "private key for --tls-cert-file")
	c.Flags().DurationVar(&reload, "reload-interval", time.Minute, "how often to re-read the key files even without a file event")
	return c
}

func oidcPublishCommand() *cobra.Command {
	var k oidcKeyFlags
	var site publish.Site
	var region string
	var autoThumbprint bool
	c := &cobra.Command{
		Use:   "publish",
		Short: "Upload the documents to S3 and create or update the IAM OIDC provider (idempotent)",
		Long: `Uploads the discovery document and JWKS to the bucket of the issuer (path style,
https://s3.<region>.amazonaws.com/<bucket>[/<prefix>], or --bucket for other hosts) with
kube-apiserver's content types, adds a public-read bucket-policy statement for exactly those two
objects, and creates or updates the IAM OIDC provider. Every write is preceded by a read; a second
run changes nothing. Prints the result (changes made) as JSON. AWS credentials come from the usual
chain (environment, profile, IMDS, ...); AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_IAM override the
endpoints (private endpoints, tests).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if k.issuer == "" {
				return errors.New("--issuer is required")
			}
			disc, jwks, err := k.documents(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			site.Issuer, site.Discovery, site.JWKS = k.issuer, disc, jwks
			if autoThumbprint && len(site.Thumbprints) == 0 {
				// IAM takes the thumbprint of the host that serves the keys.
				var d struct {
					JWKSURI string `json:"jwks_uri"`
				}
				if err := json.Unmarshal(disc, &d); err != nil {
					return err
				}
				tp, err := oidc.Thumbprint(cmd.Context(), d.JWKSURI, oidc.ThumbprintOptions{})
				if err != nil {
					return err
				}
				site.Thumbprints = []string{tp}
			}
			opts := []func(*config.LoadOptions) error{}
			if region == "" {
				region, _ = publish.RegionFromIssuer(k.issuer)
			}
			if region != "" {
				opts = append(opts, config.WithRegion(region))
			}
			cfg, err := config.LoadDefaultConfig(cmd.Context(), opts...)
			if err != nil {
				return err
			}
			res, err := publish.NewFromConfig(cfg, func(o *publish.Options) { o.Logger = oidcLogger(cmd) }).Publish(cmd.Context(), site)
			if err != nil {
				return err
			}
			return oidcPrintJSON(cmd, res)
		},
	}
	k.register(c, true)
	c.Flags().StringVar(&site.Bucket, "bucket", "", "bucket (default: derived from an S3 issuer URL)")
	c.Flags().StringSliceVar(&site.ClientIDs, "client-id", []string{oidc.DefaultAudience}, "client ids (audiences) of the IAM provider")
	c.Flags().StringSliceVar(&site.Thumbprints, "thumbprint", nil, "IAM provider thumbprints (default: leave them to IAM)")
	c.Flags().BoolVar(&autoThumbprint, "auto-thumbprint", false, "compute the thumbprint from the jwks_uri host over TLS")
	c.Flags().BoolVar(&site.CreateBucket, "create-bucket", false, "create the bucket when missing")
	c.Flags().BoolVar(&site.UnblockPublicPolicy, "unblock-public-policy", false, "turn off BlockPublicPolicy/RestrictPublicBuckets on the bucket if set")
	c.Flags().BoolVar(&site.DryRun, "dry-run", false, "print the changes without making them")
	c.Flags().StringVar(&region, "region", "", "AWS region (default: the region of an S3 issuer URL, else AWS_REGION, AWS_DEFAULT_REGION or the region of the AWS_PROFILE profile, as the AWS CLI resolves it)")
	return c
}
