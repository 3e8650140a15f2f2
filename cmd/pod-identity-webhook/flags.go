package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ekslink/ekslink/manifest/flagname"
	"github.com/ekslink/ekslink/webhook"
)

// options are the upstream's flags (aws/amazon-eks-pod-identity-webhook main.go), same names,
// defaults and meanings; those the renderer writes are named by package manifest/flagname.
type options struct {
	port, metricsPort int

	kubeconfig, kubeAPI       string
	tlsCert, tlsKey           string
	tlsCipherSuites           string
	tlsMinVersion             string
	inCluster                 bool
	serviceName, namespace    string
	tlsSecret                 string
	certSecret                string
	webhookConfigName         string
	debugHandlers             bool
	composeRoleARN            bool
	watchConfigMap            bool
	identitiesFile            string
	associations              string
	lookupGracePeriod         time.Duration
	lookup                    string
	resyncPeriod              time.Duration
	verbosity                 int
	logToStderr, alsoToStderr bool

	cfg webhook.Config

	flags *pflag.FlagSet // to tell flags set on the command line from defaults
}

func (o *options) addFlags(fs *pflag.FlagSet) {
	o.flags = fs
	fs.IntVar(&o.port, flagname.Port, 443, "Port to listen on (TLS: /mutate, /healthz, /readyz)")
	fs.IntVar(&o.metricsPort, flagname.MetricsPort, 9999, "Port to listen on for metrics (http: /metrics, /healthz, /readyz)")

	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "(out-of-cluster) Absolute path to the API server kubeconfig file")
	fs.StringVar(&o.kubeAPI, "kube-api", "", "(out-of-cluster) The url to the API server")
	fs.StringVar(&o.tlsKey, flagname.TLSKey, "/etc/webhook/certs/tls.key", "(out-of-cluster) TLS key file path; reloaded when it changes")
	fs.StringVar(&o.tlsCert, flagname.TLSCert, "/etc/webhook/certs/tls.crt", "(out-of-cluster) TLS certificate file path; reloaded when it changes")
	fs.StringVar(&o.tlsCipherSuites, "tls-cipher-suites", "", "Comma-separated list of cipher suites for the server (Go names). If omitted, the default Go cipher suites will be used")
	fs.StringVar(&o.tlsMinVersion, "tls-min-version", "", "The minimum TLS version to be used by the webhook server. (1.0, 1.1, 1.2, 1.3)")

	fs.BoolVar(&o.inCluster, flagname.InCluster, true, "Use in-cluster authentication and certificate request API. Only --in-cluster=false (certificate files, e.g. from cert-manager) is supported so far")
	fs.StringVar(&o.serviceName, flagname.ServiceName, "pod-identity-webhook", "(in-cluster) The service name fronting this webhook")
	fs.StringVar(&o.namespace, flagname.Namespace, "eks", "The namespace this webhook and its configmap reside in")
	fs.StringVar(&o.tlsSecret, "tls-secret", "pod-identity-webhook", "(in-cluster) The secret name for storing the TLS serving cert")
	fs.StringVar(&o.certSecret, flagname.CertSecret, "", "(ekslink) <namespace>/<name> of a Secret in which the webhook keeps its own CA and serving certificate for <service-name>.<namespace>.svc, created if missing and rotated before expiry; instead of --tls-cert/--tls-key")
	fs.StringVar(&o.webhookConfigName, flagname.WebhookConfigName, "", "(ekslink, with --cert-secret) The MutatingWebhookConfiguration whose webhooks pointing at <namespace>/<service-name> get the CA bundle")

	c := &o.cfg
	fs.StringVar(&c.AnnotationPrefix, flagname.AnnotationPrefix, webhook.DefaultAnnotationPrefix, "The Service Account annotation to look for")
	fs.StringVar(&c.TokenAudience, flagname.TokenAudience, webhook.DefaultTokenAudience, "The default audience for tokens. Can be overridden by annotation")
	fs.StringVar(&c.TokenMountPath, "token-mount-path", webhook.DefaultTokenMountPath, "The path to mount tokens")
	fs.Int64Var(&c.TokenExpiration, flagname.TokenExpiration, webhook.DefaultTokenExpiration, "The token expiration in seconds (at least 600)")
	fs.StringVar(&c.Region, flagname.AWSDefaultRegion, "", "If set, AWS_DEFAULT_REGION and AWS_REGION will be set to this value in mutated containers")
	fs.BoolVar(&c.RegionalSTS, flagname.STSRegionalEndpoint, false, "Whether to inject the AWS_STS_REGIONAL_ENDPOINTS=regional env var in mutated pods")
	fs.BoolVar(&o.watchConfigMap, flagname.WatchConfigMap, false, "Enables watching serviceaccounts that are configured through the pod-identity-webhook configmap (in --namespace) instead of using annotations")
	fs.BoolVar(&o.composeRoleARN, "compose-role-arn", false, "Not supported yet: the role-arn annotation must be a full ARN")
	fs.StringVar(&o.identitiesFile, "watch-container-credentials-config", "", "Absolute path to the container credential config file to watch for")
	fs.StringVar(&o.associations, flagname.WatchPodIdentityAssociations, "", "(ekslink) <namespace>/<name> of the EKS Pod Identity associations ConfigMap (e.g. kube-system/ekslink-pod-identity-associations, written by \"ekslink pod-identity association create\"): its service accounts get container credentials too, beside --watch-container-credentials-config's. Empty: off")
	fs.StringVar(&c.ContainerCredentials.Audience, "container-credentials-audience", webhook.DefaultContainerCredentialsAudience, "The audience for tokens used by the AWS Container Credentials method")
	fs.StringVar(&c.ContainerCredentials.MountPath, "container-credentials-token-mount-path", webhook.DefaultContainerCredentialsMountPath, "The path to mount tokens used by the AWS Container Credentials method")
	fs.StringVar(&c.ContainerCredentials.VolumeName, "container-credentials-token-volume-name", webhook.DefaultContainerCredentialsVolumeName, "The name of the projected volume containing the injected service account token. This is only used by the AWS Container Credentials method")
	fs.StringVar(&c.ContainerCredentials.TokenPath, "container-credentials-token-path", webhook.DefaultContainerCredentialsTokenPath, "The path of the injected service account token. This is only used by the AWS Container Credentials method")
	fs.StringVar(&c.ContainerCredentials.FullURI, "container-credentials-full-uri", webhook.DefaultContainerCredentialsFullURI, "AWS_CONTAINER_CREDENTIALS_FULL_URI will be set to this value in mutated containers")
	fs.Int64Var(&c.FSGroup, flagname.FSGroup, 0, "(ekslink) If positive, set this securityContext.fsGroup on mutated pods that declare a non-root user and set no fsGroup, so that they can read the token")
	fs.BoolVar(&c.ServiceAccountRegion, flagname.ServiceAccountRegion, false, "(ekslink) Honour the <annotation-prefix>/region service account annotation: AWS_REGION and AWS_DEFAULT_REGION for its pods, over --aws-default-region")

	fs.BoolVar(&o.debugHandlers, "enable-debugging-handlers", false, "Not supported: the upstream's /debug/alpha handlers")
	fs.DurationVar(&o.lookupGracePeriod, "service-account-lookup-grace-period", 0, "Bound on the live lookup of the pod's service account (a service account the informer cache does not have yet, or every one with --service-account-lookup=live), after which the informer cache answers (0: the default 2s). Unlike the upstream, no pod is admitted unmutated because the cache had not seen its new service account")
	fs.StringVar(&o.lookup, flagname.ServiceAccountLookup, lookupCacheFirst, "(ekslink) How a pod's service account is read: "+lookupCacheFirst+" (the informer cache when it has the account, as the upstream: no request per admission; an account the cache does not have yet is read live, so a pod created right after its service account is mutated; a role-arn changed within the watch latency before the pod may be missed) or "+lookupLive+" (a GET per admission, shared by concurrent pods of one account: such a change counts)")
	fs.DurationVar(&o.resyncPeriod, "resync-period", 60*time.Second, "The period to resync the SA informer cache")

	fs.IntVarP(&o.verbosity, "v", "v", 0, "number for the log level verbosity")
	fs.BoolVar(&o.logToStderr, "logtostderr", true, "Accepted for compatibility: logs always go to standard error (JSON)")
	fs.BoolVar(&o.alsoToStderr, "alsologtostderr", false, "Accepted for compatibility: logs always go to standard error (JSON)")
}

// Values of --service-account-lookup.
const (
	lookupLive       = "live"
	lookupCacheFirst = "cache-first"
)

// check refuses what this binary does not do, instead of silently ignoring it.
func (o *options) check() error {
	var errs []error
	if o.inCluster && o.certSecret == "" {
		errs = append(errs, errors.New("--in-cluster=true (serving certificate through a CSR) is not supported: run with --cert-secret <namespace>/<name> (self-managed certificates), or --in-cluster=false and --tls-cert/--tls-key (cert-manager or a mounted Secret)"))
	}
	if o.certSecret != "" {
		if o.flags != nil && (o.flags.Changed(flagname.TLSCert) || o.flags.Changed(flagname.TLSKey)) {
			errs = append(errs, errors.New("--cert-secret and --tls-cert/--tls-key are mutually exclusive: either the webhook manages its certificate in the Secret, or it serves the files"))
		}
		if ns, name, ok := strings.Cut(o.certSecret, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			errs = append(errs, fmt.Errorf("--cert-secret %q: want <namespace>/<name>", o.certSecret))
		}
	} else if o.webhookConfigName != "" {
		errs = append(errs, errors.New("--webhook-config-name needs --cert-secret: with --tls-cert/--tls-key the caBundle is not the webhook's to set"))
	}
	if o.associations != "" {
		if ns, name, ok := strings.Cut(o.associations, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			errs = append(errs, fmt.Errorf("--%s %q: want <namespace>/<name> of a ConfigMap, e.g. kube-system/ekslink-pod-identity-associations", flagname.WatchPodIdentityAssociations, o.associations))
		}
	}
	if o.lookup != lookupLive && o.lookup != lookupCacheFirst {
		errs = append(errs, fmt.Errorf("--%s %q: want %s or %s", flagname.ServiceAccountLookup, o.lookup, lookupCacheFirst, lookupLive))
	}
	if o.composeRoleARN {
		errs = append(errs, errors.New("--compose-role-arn is not supported: annotate service accounts with full role ARNs"))
	}
	if o.debugHandlers {
		errs = append(errs, errors.New("--enable-debugging-handlers is not supported"))
	}
	if o.cfg.TokenExpiration < webhook.MinTokenExpiration {
		o.cfg.TokenExpiration = webhook.MinTokenExpiration // the upstream raises it too
	}
	return errors.Join(errs...)
}

// tlsConfig applies --tls-min-version and --tls-cipher-suites (upstream pkg/validation.go names).
func (o *options) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{}
	switch o.tlsMinVersion {
	case "":
	case "1.0", "VersionTLS10":
		cfg.MinVersion = tls.VersionTLS10
	case "1.1", "VersionTLS11":
		cfg.MinVersion = tls.VersionTLS11
	case "1.2", "VersionTLS12":
		cfg.MinVersion = tls.VersionTLS12
	case "1.3", "VersionTLS13":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("--tls-min-version %q: want 1.0, 1.1, 1.2 or 1.3", o.tlsMinVersion)
	}
	if o.tlsCipherSuites != "" {
		known := map[string]uint16{}
		for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
			known[s.Name] = s.ID
		}
		for _, name := range strings.Split(o.tlsCipherSuites, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			id, ok := known[name]
			if !ok {
				return nil, fmt.Errorf("--tls-cipher-suites: unsupported cipher suite %q (Go names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)", name)
			}
			cfg.CipherSuites = append(cfg.CipherSuites, id)
		}
	}
	return cfg, nil
}
