package eksauth

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ekslink/ekslink/iamarn"
)

// EKSAPI is the part of the EKS client this package uses; *eks.Client implements it.
type EKSAPI interface {
	DescribeCluster(ctx context.Context, in *eks.DescribeClusterInput, optFns ...func(*eks.Options)) (*eks.DescribeClusterOutput, error)
	CreateAccessEntry(ctx context.Context, in *eks.CreateAccessEntryInput, optFns ...func(*eks.Options)) (*eks.CreateAccessEntryOutput, error)
	AssociateAccessPolicy(ctx context.Context, in *eks.AssociateAccessPolicyInput, optFns ...func(*eks.Options)) (*eks.AssociateAccessPolicyOutput, error)
}

// Authentication modes of an EKS cluster (accessConfig.authenticationMode).
const (
	AuthModeConfigMap       = "CONFIG_MAP"
	AuthModeAPIAndConfigMap = "API_AND_CONFIG_MAP"
	AuthModeAPI             = "API"
)

// ErrClusterNotActive is wrapped by *ClusterStatusError.
var ErrClusterNotActive = errors.New("eksauth: cluster is not ACTIVE")

// ClusterStatusError reports a cluster that cannot be used yet (or any more).
type ClusterStatusError struct {
	// Name is the cluster name.
	Name string
	// Status is the status EKS reported (CREATING, UPDATING, DELETING, FAILED, PENDING).
	Status string
}

// Error says what to do.
func (e *ClusterStatusError) Error() string {
	return fmt.Sprintf("eksauth: cluster %s is %s, not ACTIVE: wait for it (or check its health in the EKS console)", e.Name, e.Status)
}

// Is matches ErrClusterNotActive.
func (e *ClusterStatusError) Is(target error) bool { return target == ErrClusterNotActive }

// Cluster is what a client needs to reach an EKS cluster.
type Cluster struct {
	// Name and ARN identify the cluster; Region is the region it was described in.
	Name, ARN, Region string
	// ID is the cluster ID (set for EKS local clusters on Outposts).
	ID string
	// Local is true for local clusters on Outposts, whose tokens carry the ID instead of the name.
	Local bool
	// Endpoint is the API server URL (https).
	Endpoint string
	// CAData is the PEM CA bundle of the API server.
	CAData []byte
	// AuthenticationMode is CONFIG_MAP, API_AND_CONFIG_MAP or API ("" when EKS did not say).
	AuthenticationMode string
}

// TokenCluster is the value tokens for this cluster must sign in x-k8s-aws-id.
func (c *Cluster) TokenCluster() string {
	if c.Local && c.ID != "" {
		return c.ID
	}
	return c.Name
}

// AWSAuthIgnored reports whether the cluster ignores the aws-auth ConfigMap (mode API).
func (c *Cluster) AWSAuthIgnored() bool { return c.AuthenticationMode == AuthModeAPI }

// AccessEntriesSupported reports whether the cluster reads EKS access entries.
func (c *Cluster) AccessEntriesSupported() bool {
	return c.AuthenticationMode == AuthModeAPI || c.AuthenticationMode == AuthModeAPIAndConfigMap
}

// AuthModeNotice is a one-line explanation of how access is granted on this cluster.
func (c *Cluster) AuthModeNotice() string {
	switch c.AuthenticationMode {
	case AuthModeAPI:
		return fmt.Sprintf("cluster %s uses authentication mode API: the aws-auth ConfigMap is ignored; grant access with EKS access entries", c.Name)
	case AuthModeAPIAndConfigMap:
		return fmt.Sprintf("cluster %s uses authentication mode API_AND_CONFIG_MAP: both access entries and aws-auth are read (access entries win for the same ARN)", c.Name)
	case AuthModeConfigMap:
		return fmt.Sprintf("cluster %s uses authentication mode CONFIG_MAP: only aws-auth is read; access entries need mode API_AND_CONFIG_MAP", c.Name)
	}
	return fmt.Sprintf("cluster %s did not report its authentication mode (CONFIG_MAP assumed)", c.Name)
}

// ClusterOptions configure DescribeCluster and RESTConfig.
type ClusterOptions struct {
	// EKS is the EKS client (default eks.NewFromConfig(cfg)).
	EKS EKSAPI
	// Token configures the token generator of RESTConfig (Region defaults to cfg.Region).
	Token TokenOptions
	// TokenSource tunes the refreshing source of RESTConfig.
	TokenSource TokenSourceOptions
}

// DescribeCluster calls EKS DescribeCluster and checks what a client needs: status ACTIVE, an
// https endpoint, a PEM CA.
func DescribeCluster(ctx context.Context, cfg aws.Config, name string, opts ClusterOptions) (*Cluster, error) {
	if cfg.Region == "" {
		return nil, ErrNoRegion
	}
	client := opts.EKS
	if client == nil {
		client = eks.NewFromConfig(cfg)
	}
	out, err := client.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("eksauth: describing cluster %s in %s: %w", name, cfg.Region, err)
	}
	ec := out.Cluster
	if ec == nil {
		return nil, fmt.Errorf("eksauth: DescribeCluster %s returned no cluster", name)
	}
	c := &Cluster{Name: aws.ToString(ec.Name), ARN: aws.ToString(ec.Arn), ID: aws.ToString(ec.Id), Region: cfg.Region,
		Local: ec.OutpostConfig != nil, Endpoint: aws.ToString(ec.Endpoint)}
	if c.Name == "" {
		c.Name = name
	}
	if ec.AccessConfig != nil {
		c.AuthenticationMode = string(ec.AccessConfig.AuthenticationMode)
	}
	if ec.Status != ekstypes.ClusterStatusActive {
		return c, &ClusterStatusError{Name: c.Name, Status: string(ec.Status)}
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return c, fmt.Errorf("eksauth: cluster %s has endpoint %q, want an https URL", c.Name, c.Endpoint)
	}
	if ec.CertificateAuthority == nil || aws.ToString(ec.CertificateAuthority.Data) == "" {
		return c, fmt.Errorf("eksauth: cluster %s has no certificate authority data", c.Name)
	}
	ca, err := base64.StdEncoding.DecodeString(aws.ToString(ec.CertificateAuthority.Data))
	if err != nil {
		return c, fmt.Errorf("eksauth: cluster %s: certificate authority data is not base64: %w", c.Name, err)
	}
	if block, _ := pem.Decode(ca); block == nil || block.Type != "CERTIFICATE" {
		return c, fmt.Errorf("eksauth: cluster %s: certificate authority data is not a PEM certificate", c.Name)
	}
	c.CAData = ca
	return c, nil
}

// RESTConfig returns a rest.Config for the cluster that authenticates with src.
func (c *Cluster) RESTConfig(src *TokenSource) *rest.Config {
	cfg := &rest.Config{Host: c.Endpoint, TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), c.CAData...)}}
	ConfigureREST(cfg, src)
	return cfg
}

// RESTConfig describes the cluster and returns a rest.Config whose token refreshes itself.
func RESTConfig(ctx context.Context, cfg aws.Config, name string, opts ClusterOptions) (*rest.Config, error) {
	c, err := DescribeCluster(ctx, cfg, name, opts)
	if err != nil {
		return nil, err
	}
	gen, err := NewTokenGenerator(cfg, func(o *TokenOptions) { *o = opts.Token })
	if err != nil {
		return nil, err
	}
	return c.RESTConfig(NewTokenSource(gen, c.TokenCluster(), opts.TokenSource)), nil
}

// KubeconfigOptions shape the exec stanza of Kubeconfig.
type KubeconfigOptions struct {
	// Command is the exec plugin (default "ekslink"); it is called as
	// "<command> token --cluster-name <name> --region <region> [--role-arn <arn>]".
	Command string
	// Profile sets AWS_PROFILE for the plugin.
	Profile string
	// RoleARN makes the plugin assume this role first. It must be an IAM role ARN (iamarn.Role):
	// anything else is refused here rather than by STS at every token.
	RoleARN string
	// Context names the context, cluster and user (default: the cluster ARN, or its name).
	Context string
	// ExtraArgs are appended to the plugin's arguments (e.g. "--fips").
	ExtraArgs []string
}

// Kubeconfig renders a kubeconfig for the cluster with an exec stanza (interactiveMode Never).
func Kubeconfig(c *Cluster, opts KubeconfigOptions) ([]byte, error) {
	if c.Endpoint == "" || len(c.CAData) == 0 || c.Region == "" {
		return nil, errors.New("eksauth: the cluster needs an endpoint, CA data and region (use DescribeCluster)")
	}
	name := opts.Context
	if name == "" {
		name = c.ARN
	}
	if name == "" {
		name = c.Name
	}
	cmd := opts.Command
	if cmd == "" {
		cmd = "ekslink"
	}
	args := []string{"token", "--cluster-name", c.TokenCluster(), "--region", c.Region}
	if opts.RoleARN != "" {
		p, err := iamarn.Parse(opts.RoleARN)
		if err != nil {
			return nil, fmt.Errorf("eksauth: KubeconfigOptions.RoleARN: %w", err)
		}
		if p.Kind != iamarn.Role {
			return nil, fmt.Errorf("eksauth: KubeconfigOptions.RoleARN %s is a %s ARN; the plugin can only assume an IAM role (arn:%s:iam::%s:role/<name>)", opts.RoleARN, p.Kind, p.Partition, p.AccountID)
		}
		args = append(args, "--role-arn", opts.RoleARN)
	}
	args = append(args, opts.ExtraArgs...)
	exec := &clientcmdapi.ExecConfig{
		APIVersion:      ExecCredentialV1beta1,
		Command:         cmd,
		Args:            args,
		InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
	}
	if opts.Profile != "" {
		exec.Env = []clientcmdapi.ExecEnvVar{{Name: "AWS_PROFILE", Value: opts.Profile}}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: c.Endpoint, CertificateAuthorityData: c.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Exec: exec}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	return clientcmd.Write(*kc)
}

// WriteTempKubeconfig writes data to a new file readable only by the caller (0600, unpredictable
// name in dir, or the system temp dir when dir is "") and returns its path and a cleanup func that
// removes it.
func WriteTempKubeconfig(dir string, data []byte) (path string, cleanup func() error, err error) {
	f, err := os.CreateTemp(dir, "ekslink-kubeconfig-*.yaml")
	if err != nil {
		return "", nil, fmt.Errorf("eksauth: creating a private kubeconfig file: %w", err)
	}
	path = f.Name()
	cleanup = func() error {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := f.Chmod(0o600); err == nil {
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			return path, cleanup, nil
		}
	} else {
		f.Close()
	}
	_ = cleanup()
	return "", nil, fmt.Errorf("eksauth: writing %s: %w", path, err)
}
