package webhook

import (
	"cmp"
	"math/rand/v2"
)

// Defaults of Config, the same as the upstream webhook's flags (aws/amazon-eks-pod-identity-webhook
// main.go and pkg/constants.go).
const (
	DefaultAnnotationPrefix = "eks.amazonaws.com"
	DefaultTokenAudience    = "sts.amazonaws.com"
	DefaultTokenMountPath   = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
	// DefaultTokenExpiration is the projected token's lifetime in seconds (24 h, the EKS maximum).
	DefaultTokenExpiration = int64(86400)
	// MinTokenExpiration is the shortest lifetime kube-apiserver accepts for a projected token;
	// shorter values from flags or annotations are raised to it.
	MinTokenExpiration = int64(600)
	// JitterMinTokenExpiration is the low end of the jittered lifetime of container-credentials
	// tokens: a default 86400 s lifetime becomes a value in [79200, 86400], so that a node's pods do
	// not all refresh their tokens in the same second.
	JitterMinTokenExpiration = int64(79200)

	DefaultContainerCredentialsAudience   = "pods.eks.amazonaws.com"
	DefaultContainerCredentialsMountPath  = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
	DefaultContainerCredentialsVolumeName = "eks-pod-identity-token"
	DefaultContainerCredentialsTokenPath  = "eks-pod-identity-token"
	DefaultContainerCredentialsFullURI    = "http://169.254.170.23/v1/credentials"

	// PodIdentityLabel is set to "enabled" on pods mutated for container credentials (always under
	// eks.amazonaws.com, whatever the annotation prefix, as the upstream does).
	PodIdentityLabel = "eks.amazonaws.com/pod-identity"
	// SkipPodLabel is the label the rendered MutatingWebhookConfiguration's objectSelector uses to
	// exclude pods from the webhook altogether.
	SkipPodLabel = "eks.amazonaws.com/skip-pod-identity-webhook"
)

// Annotation names, relative to Config.AnnotationPrefix ("eks.amazonaws.com/role-arn").
const (
	// AnnotationRoleARN on a service account: the IAM role its pods assume (IRSA).
	AnnotationRoleARN = "role-arn"
	// AnnotationAudience on a service account: the token's audience (default Config.TokenAudience).
	AnnotationAudience = "audience"
	// AnnotationRegionalSTS on a service account: "true"/"false", overrides Config.RegionalSTS.
	AnnotationRegionalSTS = "sts-regional-endpoints"
	// AnnotationTokenExpiration on a pod or service account: the token lifetime in seconds (pod >
	// service account > Config.TokenExpiration).
	AnnotationTokenExpiration = "token-expiration"
	// AnnotationSkipContainers on a pod: a comma-separated list of (init) container names to leave
	// alone.
	AnnotationSkipContainers = "skip-containers"
	// AnnotationRegion on a service account: AWS_REGION/AWS_DEFAULT_REGION for its pods, overriding
	// Config.Region. Honoured only with Config.ServiceAccountRegion (not an upstream annotation;
	// upstream issue #149).
	AnnotationRegion = "region"
)

// Environment variables the mutation sets (the AWS SDKs read them).
const (
	EnvRoleARN                  = "AWS_ROLE_ARN"
	EnvWebIdentityTokenFile     = "AWS_WEB_IDENTITY_TOKEN_FILE"
	EnvContainerCredentialsURI  = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
	EnvContainerAuthTokenFile   = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
	EnvRegion                   = "AWS_REGION"
	EnvDefaultRegion            = "AWS_DEFAULT_REGION"
	EnvSTSRegionalEndpoints     = "AWS_STS_REGIONAL_ENDPOINTS"
	irsaVolumeName              = "aws-iam-token"
	irsaTokenPath               = "token"
	regionalSTSValue            = "regional"
	podIdentityLabelEnabled     = "enabled"
	windowsOSValue              = "windows"
	nodeSelectorOS              = "kubernetes.io/os"
	nodeSelectorOSBeta          = "beta.kubernetes.io/os"
	containerCredentialsDefault = DefaultTokenExpiration
)

// Config is the webhook's configuration: the upstream's flags, plus the current contents of the
// pod-identity-webhook ConfigMap and of the container-credentials identities file. The zero value
// is the upstream's default configuration with neither source.
type Config struct {
	// AnnotationPrefix is the annotation domain (--annotation-prefix). Default eks.amazonaws.com.
	AnnotationPrefix string
	// TokenAudience is the IRSA token's default audience (--token-audience). Default sts.amazonaws.com.
	TokenAudience string
	// TokenMountPath is where the IRSA token is mounted (--token-mount-path).
	TokenMountPath string
	// TokenExpiration is the default token lifetime in seconds (--token-expiration). Default
	// 86400; values below 600 are raised to 600.
	TokenExpiration int64
	// Region, when set, is injected as AWS_REGION and AWS_DEFAULT_REGION (--aws-default-region).
	Region string
	// RegionalSTS injects AWS_STS_REGIONAL_ENDPOINTS=regional (--sts-regional-endpoint).
	RegionalSTS bool
	// ContainerCredentials configures the container-credentials (EKS Pod Identity) mode.
	ContainerCredentials ContainerCredentials
	// ComposeRoleARN, when its AccountID is set, turns a role-arn annotation that is not an ARN
	// (a role name or path) into arn:<Partition>:iam::<AccountID>:role/<annotation>
	// (--compose-role-arn, which reads both from EC2 instance metadata).
	ComposeRoleARN ComposeRoleARN

	// Mappings are the entries of the pod-identity-webhook ConfigMap (--watch-config-map); see
	// ParseMappings.
	Mappings Mappings
	// Identities are the service accounts of the identities file
	// (--watch-container-credentials-config); see ParseIdentities.
	Identities Identities

	// FSGroup, when positive, is set as the pod's securityContext.fsGroup on mutated pods that do
	// not set one and have a mutated container declared non-root (runAsNonRoot, or a non-zero
	// runAsUser), so that the non-root process can read the projected token (upstream issue #8).
	// Off by default: an fsGroup also changes the ownership of the pod's other volumes.
	FSGroup int64
	// ServiceAccountRegion honours the <prefix>/region annotation on service accounts: it sets
	// AWS_REGION/AWS_DEFAULT_REGION for that account's pods, over Region (upstream issue #149).
	ServiceAccountRegion bool

	// Rand returns a uniformly random integer in [0, n); it jitters container-credentials token
	// lifetimes. Default math/rand/v2.Int64N. Tests inject a fixed one.
	Rand func(n int64) int64
}

// ContainerCredentials configures the container-credentials mode. Zero fields take the upstream's
// defaults (--container-credentials-*).
type ContainerCredentials struct {
	// Audience of the token. Default pods.eks.amazonaws.com.
	Audience string
	// MountPath of the token volume. Default /var/run/secrets/pods.eks.amazonaws.com/serviceaccount.
	MountPath string
	// VolumeName of the projected volume. Default eks-pod-identity-token.
	VolumeName string
	// TokenPath is the token's file name in the volume. Default eks-pod-identity-token.
	TokenPath string
	// FullURI is AWS_CONTAINER_CREDENTIALS_FULL_URI. Default http://169.254.170.23/v1/credentials.
	FullURI string
}

// ComposeRoleARN completes role-arn annotations that hold only a role name (--compose-role-arn).
type ComposeRoleARN struct {
	// AccountID is the 12-digit account of the composed ARN; empty disables composing.
	AccountID string
	// Partition of the composed ARN. Default aws.
	Partition string
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.AnnotationPrefix = cmp.Or(c.AnnotationPrefix, DefaultAnnotationPrefix)
	c.TokenAudience = cmp.Or(c.TokenAudience, DefaultTokenAudience)
	c.TokenMountPath = cmp.Or(c.TokenMountPath, DefaultTokenMountPath)
	c.TokenExpiration = cmp.Or(c.TokenExpiration, DefaultTokenExpiration)
	c.TokenExpiration = max(c.TokenExpiration, MinTokenExpiration)
	cc := &c.ContainerCredentials
	cc.Audience = cmp.Or(cc.Audience, DefaultContainerCredentialsAudience)
	cc.MountPath = cmp.Or(cc.MountPath, DefaultContainerCredentialsMountPath)
	cc.VolumeName = cmp.Or(cc.VolumeName, DefaultContainerCredentialsVolumeName)
	cc.TokenPath = cmp.Or(cc.TokenPath, DefaultContainerCredentialsTokenPath)
	cc.FullURI = cmp.Or(cc.FullURI, DefaultContainerCredentialsFullURI)
	c.ComposeRoleARN.Partition = cmp.Or(c.ComposeRoleARN.Partition, "aws")
	if c.Rand == nil {
		c.Rand = rand.Int64N
	}
	return c
}

func (c *Config) annotation(name string) string { return c.AnnotationPrefix + "/" + name }
