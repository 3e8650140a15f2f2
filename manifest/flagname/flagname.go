// Package flagname holds the command-line flag names that package manifest writes into container
// arguments and that cmd/eks-connector, cmd/pod-identity-agent and cmd/pod-identity-webhook define
// their flags with, so a
// renamed flag changes the binary and every rendered manifest (and through the drift tests the
// checked-in YAML and the Helm charts) together.
//
// It is a leaf package of constants only: the binaries import it without the renderer's
// dependencies (package manifest pulls in client-go's dynamic client and REST mapper, which the pod
// identity agent does not otherwise link). Names are without the leading "--".
package flagname

// Flags shared by both binaries.
const (
	// Region is the AWS region (connector init, pod identity agent server).
	Region = "region"
	// MetricsAddr is the address of /metrics.
	MetricsAddr = "metrics-addr"
)

// Flags of cmd/eks-connector (init, proxy and sync).
const (
	ActivationID       = "activation-id"
	ActivationCodeFile = "activation-code-file"
	SSMEndpoint        = "ssm-endpoint"
	StateNamespace     = "state-namespace"
	StateSecretPrefix  = "state-secret-prefix"
	VaultDir           = "vault-dir"
	PodName            = "pod-name"
	HealthAddr         = "health-addr"
	Listen             = "listen"
	UserExtras         = "user-extras"
)

// Flags of cmd/pod-identity-agent (server and init).
const (
	ClusterName       = "cluster-name"
	BindHosts         = "bind-hosts"
	Port              = "port"
	ProbeAddr         = "probe-addr"
	RotateCredentials = "rotate-credentials"
	Addresses         = "addresses"
	// Backend, AssociationsConfigMap and PerPodSessions select and configure the web identity
	// backend (--backend=web-identity).
	Backend               = "backend"
	AssociationsConfigMap = "associations-configmap"
	PerPodSessions        = "per-pod-sessions"
)

// Flags of cmd/pod-identity-webhook that the renderer writes: the upstream webhook's names
// (aws/amazon-eks-pod-identity-webhook main.go), plus CertSecret and WebhookConfigName. The TLS
// port is Port.
const (
	MetricsPort          = "metrics-port"
	InCluster            = "in-cluster"
	Namespace            = "namespace"
	ServiceName          = "service-name"
	TLSCert              = "tls-cert"
	TLSKey               = "tls-key"
	CertSecret           = "cert-secret"
	WebhookConfigName    = "webhook-config-name"
	AnnotationPrefix     = "annotation-prefix"
	TokenAudience        = "token-audience"
	TokenExpiration      = "token-expiration"
	AWSDefaultRegion     = "aws-default-region"
	STSRegionalEndpoint  = "sts-regional-endpoint"
	WatchConfigMap       = "watch-config-map"
	FSGroup              = "fs-group"
	ServiceAccountRegion = "service-account-region"
	ServiceAccountLookup = "service-account-lookup"
	// WatchPodIdentityAssociations names the associations ConfigMap (<namespace>/<name>).
	WatchPodIdentityAssociations = "watch-pod-identity-associations"
)
