package demo

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/oidc"
	"github.com/ekslink/ekslink/registration"
)

// Fixed names of the demo's world.
const (
	ClusterName   = "ekslink-demo"
	AgentRoleARN  = "arn:aws:iam::111122223333:role/eks-connector-agent"
	AliceARN      = "arn:aws:iam::111122223333:role/team-a-developer"
	BobARN        = "arn:aws:iam::111122223333:user/bob-auditor"
	MalloryARN    = "arn:aws:iam::111122223333:user/mallory"
	PodRoleARN    = "arn:aws:iam::111122223333:role/s3-reader"
	PodNamespace  = "apps"
	PodSA         = "s3-reader"
	jwksURI       = envtest.DefaultIssuer + "/openid/v1/jwks"
	connectorNS   = "eks-connector"
	connectorName = "eks-connector"
	connectorPod  = "eks-connector-0"
	statePrefix   = "eks-connector-state"
)

// Options configure a Demo.
type Options struct {
	// Transcript receives the readable account of each step (nil: silent).
	Transcript io.Writer
	// BinDir holds the eks-connector, pod-identity-agent, pod-identity-webhook and workload binaries
	// (BuildBinaries); empty means build them into the work directory.
	BinDir string
	// WorkDir holds every file the demo writes (default: a temporary directory removed by Close).
	WorkDir string
	// UserExtras runs the connector with user extras on: the rendered RBAC grants
	// userextras/arn and userextras/sessionname and the proxy sends them (--user-extras). Off,
	// the default, the RBAC is the one AWS documents for the EKS Connector and the proxy sends
	// Impersonate-User alone.
	UserExtras bool
}

// Demo is the demo's world: the control plane, the AWS endpoints and the processes it started.
type Demo struct {
	opts Options
	t    transcript
	dir  string
	temp bool

	Env *envtest.Environment
	AWS *awsfake.Set

	bins         map[string]string
	awsEnv       []string
	registration *registration.ClusterRegistration
	kubeconfig   string
	tokenFile    string
	vaultDir     string
	socket       string
	proxyHealth  string
	init         string // output of the last eks-connector init
	procs        []*process
	proxy        *process
	agent        *process
	// webIdentityAgent is the agent of the PodIdentityAnywhere step (web identity backend).
	webIdentityAgent *process
	closers          []func() // loopback servers the steps started (the issuer), closed by Close

	oidcKeys                []oidc.Key // the cluster's signing keys as the OIDC step read them
	oidcDiscovery, oidcJWKS []byte     // the documents the OIDC step built from them
	irsaTokenFile           string     // where the webhook step put the pod's projected token
}

// Steps is the number of steps Run performs.
const Steps = 13

// Run performs the whole demo and cleans up. It returns nil only if every step behaved as expected.
func Run(ctx context.Context, opts Options) (err error) {
	d, err := New(opts)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := d.Close(); err == nil {
			err = cerr
		}
	}()
	d.t.total = Steps
	for _, step := range []func(context.Context) error{
		d.StartControlPlane,
		d.StartAWS,
		d.RegisterCluster,
		d.InstallConnector,
		d.ConnectorInit,
		d.ConnectorProxy,
		d.KeyRotation,
		d.ConsoleAccess,
		d.PodIdentity,
		d.OIDC,
		d.Webhook,
		d.PodIdentityAnywhere,
		d.ConnectorLifecycle, // last: it deregisters what the connector steps use
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	if d.t.w != nil {
		fmt.Fprintf(d.t.w, "\nAll %d steps behaved as expected. Cleaning up.\n", Steps)
	}
	return nil
}

// New prepares a demo without starting anything.
func New(opts Options) (*Demo, error) {
	d := &Demo{opts: opts, t: transcript{w: opts.Transcript, total: Steps}, dir: opts.WorkDir}
	if d.dir == "" {
		dir, err := os.MkdirTemp("", "ekslink-demo-")
		if err != nil {
			return nil, err
		}
		d.dir, d.temp = dir, true
	}
	d.vaultDir = filepath.Join(d.dir, "vault")
	d.socket = filepath.Join(d.dir, "shared", "connector.sock")
	return d, nil
}

// Dir is the work directory.
func (d *Demo) Dir() string { return d.dir }

// Close stops every process and endpoint the demo started and removes its temporary files.
func (d *Demo) Close() error {
	var errs []error
	for i := len(d.procs) - 1; i >= 0; i-- {
		if err := d.procs[i].stop(); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	if d.AWS != nil {
		d.AWS.Close()
	}
	if d.Env != nil {
		if err := d.Env.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if d.temp {
		_ = os.RemoveAll(d.dir)
	}
	return errors.Join(errs...)
}

// StartControlPlane starts etcd and kube-apiserver on loopback and builds the binaries.
func (d *Demo) StartControlPlane(ctx context.Context) error {
	d.t.heading("Control plane: etcd + kube-apiserver on loopback")
	bins, err := envtest.FindBinaries()
	if err != nil {
		return err // says to run "make testbin"
	}
	d.t.call("start %s and %s", filepath.Base(bins.Etcd), filepath.Base(bins.KubeAPIServer))
	env := &envtest.Environment{
		Issuer:       envtest.DefaultIssuer,
		JWKSURI:      jwksURI,
		APIAudiences: []string{envtest.DefaultIssuer},
	}
	if _, err := env.Start(); err != nil {
		return err
	}
	d.Env = env
	if _, err := env.Client.Discovery().ServerVersion(); err != nil {
		return err
	}
	d.t.got("kube-apiserver and etcd %s at %s (RBAC, service-account issuer %s)", filepath.Base(bins.Dir), env.URL, env.Issuer)
	if err := os.MkdirAll(filepath.Join(d.dir, "shared"), 0o700); err != nil {
		return err
	}
	d.bins = map[string]string{}
	binDir := d.opts.BinDir
	if binDir == "" {
		binDir = filepath.Join(d.dir, "bin")
		d.t.call("go build ./cmd/eks-connector ./cmd/pod-identity-agent ./cmd/pod-identity-webhook ./internal/demo/workload")
		if err := BuildBinaries(ctx, binDir); err != nil {
			return err
		}
	}
	for name := range binaries {
		p := filepath.Join(binDir, name)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("binary %s: %w", name, err)
		}
		d.bins[name] = p
	}
	d.t.ok("control plane up, binaries in %s", binDir)
	return nil
}

// StartAWS starts the embedded AWS endpoints; EKS Auth trusts the control plane's service-account keys.
func (d *Demo) StartAWS(context.Context) error {
	d.t.heading("AWS endpoints on loopback (SigV4 verified with the AWS SDK's signer)")
	keys := make([]crypto.PublicKey, 0, len(d.Env.SigningKeys))
	for _, k := range d.Env.SigningKeys {
		keys = append(keys, k.Public())
	}
	set, err := awsfake.Start(awsfake.Options{ServiceAccountIssuer: d.Env.Issuer, ServiceAccountKeys: keys})
	if err != nil {
		return err
	}
	d.AWS = set
	if d.awsEnv, err = set.Env(d.dir); err != nil {
		return err
	}
	d.awsEnv = append(d.awsEnv, "HOME="+d.dir, "PATH="+os.Getenv("PATH"))
	d.t.got("EKS      %s (restJson1)", set.EKS.URL)
	d.t.got("SSM      %s (awsJson1.1, anonymous RegisterManagedInstance)", set.SSM.URL)
	d.t.got("EKS Auth %s (restJson1, SigV4 service eks-auth)", set.EKSAuth.URL)
	d.t.got("STS      %s (awsQuery)", set.STS.URL)
	d.t.ok("region %s, account %s", set.Region(), set.AccountID())
	return nil
}

// RegisterCluster calls EKS RegisterCluster, as `aws eks register-cluster` does.
func (d *Demo) RegisterCluster(ctx context.Context) error {
	d.t.heading("Register the cluster with EKS (RegisterCluster)")
	client := eks.NewFromConfig(d.AWS.Config(), func(o *eks.Options) { o.BaseEndpoint = aws.String(d.AWS.EKS.URL) })
	d.t.call("eks:RegisterCluster name=%s provider=EKS_ANYWHERE roleArn=%s", ClusterName, AgentRoleARN)
	reg, err := registration.RegisterCluster(ctx, client, registration.ClusterSpec{Name: ClusterName, Provider: "EKS_ANYWHERE", RoleARN: AgentRoleARN})
	if err != nil {
		return fmt.Errorf("RegisterCluster: %w", err)
	}
	d.registration = reg
	d.t.got("cluster %s", reg.ClusterARN)
	d.t.got("activation id %s, code (%d characters, not shown), expires %s", reg.Activation.ID, len(reg.Activation.Code), reg.Expiry.Format(time.RFC3339))
	d.t.ok("registered, status PENDING until the agent registers")
	return nil
}

func (d *Demo) writeFile(name string, data []byte) (string, error) {
	p := filepath.Join(d.dir, name)
	return p, os.WriteFile(p, data, 0o600)
}

func checkStatus(resp *http.Response, err error, want int) (string, error) {
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return string(b), fmt.Errorf("got %s, want %d: %s", resp.Status, want, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
