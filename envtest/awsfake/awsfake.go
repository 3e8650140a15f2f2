package awsfake

import (
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ekslink/ekslink/envtest/awstest"
)

// Options configure a Set. The zero value works: region us-west-2, account 111122223333.
type Options struct {
	// Region is the region every endpoint signs for (default awstest.DefaultRegion).
	Region string
	// AccountID is the account the endpoints live in (default 111122223333).
	AccountID string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ServiceAccountIssuer is the issuer EKS Auth expects in the service-account tokens it
	// receives (the cluster's --service-account-issuer, such as envtest.Environment.Issuer).
	ServiceAccountIssuer string
	// ServiceAccountKeys verify those tokens (the public halves of the cluster's signing keys).
	// Without keys every AssumeRoleForPodIdentity call fails with InvalidTokenException.
	ServiceAccountKeys []crypto.PublicKey
	// RegistrationLimit is the number of managed instances an activation accepts (default 2).
	RegistrationLimit int
	// CredentialTTL is the lifetime of issued credentials (default 1 hour).
	CredentialTTL time.Duration
}

// Set is a running set of endpoints. Close it when done.
type Set struct {
	// EKS, SSM, EKSAuth, STS and IAM are the individual endpoints.
	EKS, SSM, EKSAuth, STS, IAM *awstest.Server

	opts Options

	mu            sync.Mutex
	clusters      map[string]*cluster
	activations   map[string]*activation
	instances     []Instance
	associations  map[string]Association // by cluster/namespace/serviceAccount
	issued        map[string]issuedRole  // access key id -> the assumed role it stands for
	eksClusters   map[string]*eksCluster // AddCluster (eksaccess.go)
	authCalls     int
	registerCalls int
	// IAM (iam.go, iam_oidc.go): the roles by name and the OIDC providers by ARN that the IAM
	// endpoint serves and STS AssumeRoleWithWebIdentity evaluates (webidentity.go).
	roles        map[string]*Role
	providers    map[string]*OIDCProvider
	issuerClient *http.Client       // how STS reaches issuers (SetIssuerClient)
	faults       map[string][]fault // Fail, by operation (faults.go)
	calls        map[string]int
}

// Instance is a managed instance registered through SSM RegisterManagedInstance.
type Instance struct {
	// InstanceID is the managed instance id SSM assigned ("mi-...").
	InstanceID string
	// ActivationID is the activation the instance registered with.
	ActivationID string
	// Fingerprint is the instance fingerprint the agent sent.
	Fingerprint string
	// PublicKey is the public key the agent sent.
	PublicKey string
	// Registered is when the registration succeeded.
	Registered time.Time
	// LastPing and AgentVersion are set by Ping (the agent's heartbeat).
	LastPing     time.Time
	AgentVersion string
}

// issuedRole is the identity behind credentials EKS Auth issued: the assumed-role ARN and the
// "AROA...:<session>" id STS reports as UserId.
type issuedRole struct{ arn, userID string }

// Association is an EKS Pod Identity association.
type Association struct {
	// Cluster is the EKS cluster name in the AssumeRoleForPodIdentity path.
	Cluster string
	// Namespace and ServiceAccount are the pod's, as the token's subject names them.
	Namespace, ServiceAccount string
	// RoleARN is the role whose credentials EKS Auth issues.
	RoleARN string
}

// Start starts the five endpoints.
func Start(opts Options) (*Set, error) {
	if opts.Region == "" {
		opts.Region = awstest.DefaultRegion
	}
	if opts.AccountID == "" {
		opts.AccountID = "111122223333"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RegistrationLimit == 0 {
		opts.RegistrationLimit = 2
	}
	if opts.CredentialTTL == 0 {
		opts.CredentialTTL = time.Hour
	}
	s := &Set{
		opts:         opts,
		clusters:     map[string]*cluster{},
		activations:  map[string]*activation{},
		associations: map[string]Association{},
		issued:       map[string]issuedRole{},
		eksClusters:  map[string]*eksCluster{},
		roles:        map[string]*Role{},
		providers:    map[string]*OIDCProvider{},
		faults:       map[string][]fault{},
		calls:        map[string]int{},
	}
	s.EKS = awstest.NewServer(awstest.Options{Service: "eks", Region: opts.Region, Protocol: awstest.RESTJSON, Now: opts.Now})
	s.SSM = awstest.NewServer(awstest.Options{Service: "ssm", Region: opts.Region, Protocol: awstest.JSON, Anonymous: true, Now: opts.Now})
	s.EKSAuth = awstest.NewServer(awstest.Options{Service: "eks-auth", Region: opts.Region, Protocol: awstest.RESTJSON, Now: opts.Now})
	s.STS = awstest.NewServer(awstest.Options{Service: "sts", Region: opts.Region, Protocol: awstest.Query, Anonymous: true, Now: opts.Now})
	// IAM is global and signs with us-east-1 in the aws partition; a client whose endpoint is
	// overridden (AWS_ENDPOINT_URL_IAM, BaseEndpoint) signs with its own region, which is this one.
	s.IAM = awstest.NewServer(awstest.Options{Service: "iam", Region: opts.Region, Protocol: awstest.Query, Now: opts.Now})
	s.registerEKS()
	s.registerEKSAccess()
	s.registerSSM()
	s.registerSSMInstances()
	s.registerEKSAuth()
	s.registerSTS()
	s.registerIAM()
	return s, nil
}

// Close stops every endpoint.
func (s *Set) Close() {
	for _, srv := range []*awstest.Server{s.EKS, s.SSM, s.EKSAuth, s.STS, s.IAM} {
		if srv != nil {
			srv.Close()
		}
	}
}

// Region is the region of every endpoint.
func (s *Set) Region() string { return s.opts.Region }

// AccountID is the account of every endpoint.
func (s *Set) AccountID() string { return s.opts.AccountID }

// CallerARN is the identity of the static credentials Config signs with.
func (s *Set) CallerARN() string {
	return "arn:aws:iam::" + s.opts.AccountID + ":user/ekslink-demo"
}

// Config returns an aws.Config with the static test credentials, the endpoints' certificate trusted,
// and no BaseEndpoint (set one per client, e.g. Set.EKS.URL).
func (s *Set) Config() aws.Config {
	c := s.EKS.Credentials()
	return aws.Config{
		Region:      s.opts.Region,
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		HTTPClient:  s.EKS.Client(),
	}
}

// CAPEM is the certificate every endpoint serves (they share httptest's localhost certificate).
func (s *Set) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.EKS.Certificate().Raw})
}

// Env returns the environment a child process needs to reach the set with the AWS SDK: region,
// static credentials, AWS_CA_BUNDLE (written under dir) and AWS_ENDPOINT_URL_<SERVICE>.
func (s *Set) Env(dir string) ([]string, error) {
	bundle := filepath.Join(dir, "aws-ca-bundle.pem")
	if err := os.WriteFile(bundle, s.CAPEM(), 0o600); err != nil {
		return nil, err
	}
	c := s.EKS.Credentials()
	return []string{
		"AWS_REGION=" + s.opts.Region,
		"AWS_ACCESS_KEY_ID=" + c.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + c.SecretAccessKey,
		"AWS_SESSION_TOKEN=" + c.SessionToken,
		"AWS_CA_BUNDLE=" + bundle,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_EKS=" + s.EKS.URL,
		"AWS_ENDPOINT_URL_SSM=" + s.SSM.URL,
		"AWS_ENDPOINT_URL_EKS_AUTH=" + s.EKSAuth.URL,
		"AWS_ENDPOINT_URL_STS=" + s.STS.URL,
		"AWS_ENDPOINT_URL_IAM=" + s.IAM.URL,
	}, nil
}

// Associate creates a pod identity association.
func (s *Set) Associate(a Association) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.associations[a.Cluster+"/"+a.Namespace+"/"+a.ServiceAccount] = a
}

// Instances returns the managed instances registered so far, oldest first.
func (s *Set) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Instance(nil), s.instances...)
}

// RegisterCalls is the number of RegisterManagedInstance calls, successful or not.
func (s *Set) RegisterCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.registerCalls
}

// AuthCalls is the number of AssumeRoleForPodIdentity calls, successful or not.
func (s *Set) AuthCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authCalls
}

var errNoRandom = errors.New("awsfake: no randomness")

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Errorf("%w: %v", errNoRandom, err))
	}
	return hex.EncodeToString(b)
}
