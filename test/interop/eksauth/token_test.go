package eksauth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"sigs.k8s.io/aws-iam-authenticator/pkg/token"

	"github.com/ekslink/ekslink/eksauth"
	"github.com/ekslink/ekslink/envtest/awstest"
)

const callerARN = "arn:aws:sts::111122223333:assumed-role/ci-deployer/pipeline-42"

// localSTS is an STS endpoint that recomputes the presigned SigV4 signature (including the
// x-k8s-aws-id header the verifier adds) and answers GetCallerIdentity in JSON, as STS does.
func localSTS(t testing.TB, region string, creds ...aws.Credentials) *awstest.Server {
	t.Helper()
	s := awstest.New(t, awstest.Options{
		Service: "sts", Region: region, Protocol: awstest.Query, Credentials: creds,
		// STS ignores X-Amz-Expires for GetCallerIdentity (15-minute validity, enforced by the
		// verifier itself), so the emulator's presign expiry check is moved out of the way.
		Now: func() time.Time { return time.Now().Add(-30 * time.Minute) },
	})
	s.HandleAction("GetCallerIdentity", func(w http.ResponseWriter, r *http.Request) {
		awstest.WriteJSON(w, "application/json", map[string]any{"GetCallerIdentityResponse": map[string]any{
			"GetCallerIdentityResult": map[string]any{"Account": "111122223333", "Arn": callerARN, "UserId": "AROAEXAMPLEEXAMPLE:pipeline-42"},
			"ResponseMetadata":        map[string]any{"RequestId": "00000000-0000-0000-0000-000000000000"},
		}})
	})
	return s
}

// referenceVerifier is aws-iam-authenticator's own verifier, with its HTTP client replaced (in this
// test only) by one that dials the local STS whatever host the token names. The request keeps the
// token's host, so the signature is checked against it.
func referenceVerifier(t testing.TB, s *awstest.Server, cluster, partition, region string) token.Verifier {
	t.Helper()
	v := token.NewVerifier(cluster, partition, region)
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	addr := s.Listener.Addr().String()
	client := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"},
		},
	}
	f := reflect.ValueOf(v).Elem().FieldByName("client")
	if !f.IsValid() || f.Type() != reflect.TypeOf(client) {
		t.Fatalf("aws-iam-authenticator's verifier changed shape: cannot point it at the local STS")
	}
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(client))
	return v
}

func TestTokensPassTheReferenceVerifierInEveryPartition(t *testing.T) {
	cases := []struct {
		name, region, partition string
		opts                    eksauth.TokenOptions
		host                    string
	}{
		{"aws regional", "eu-west-1", "aws", eksauth.TokenOptions{}, "sts.eu-west-1.amazonaws.com"},
		{"aws us-east-1 stays regional", "us-east-1", "aws", eksauth.TokenOptions{}, "sts.us-east-1.amazonaws.com"},
		{"aws FIPS", "us-west-2", "aws", eksauth.TokenOptions{FIPS: true}, "sts-fips.us-west-2.amazonaws.com"},
		{"aws dual-stack", "us-west-2", "aws", eksauth.TokenOptions{DualStack: true}, "sts.us-west-2.api.aws"},
		{"aws FIPS dual-stack", "us-east-2", "aws", eksauth.TokenOptions{FIPS: true, DualStack: true}, "sts-fips.us-east-2.api.aws"},
		{"aws legacy global on request", "eu-central-1", "aws", eksauth.TokenOptions{GlobalEndpoint: true}, "sts.amazonaws.com"},
		{"aws-cn", "cn-north-1", "aws-cn", eksauth.TokenOptions{}, "sts.cn-north-1.amazonaws.com.cn"},
		{"aws-cn dual-stack", "cn-northwest-1", "aws-cn", eksauth.TokenOptions{DualStack: true}, "sts.cn-northwest-1.api.amazonwebservices.com.cn"},
		{"aws-us-gov", "us-gov-west-1", "aws-us-gov", eksauth.TokenOptions{}, "sts.us-gov-west-1.amazonaws.com"},
		{"aws-us-gov FIPS (regional endpoint is FIPS)", "us-gov-east-1", "aws-us-gov", eksauth.TokenOptions{FIPS: true}, "sts.us-gov-east-1.amazonaws.com"},
		{"aws-iso", "us-iso-east-1", "aws-iso", eksauth.TokenOptions{}, "sts.us-iso-east-1.c2s.ic.gov"},
		{"aws-iso-b", "us-isob-east-1", "aws-iso-b", eksauth.TokenOptions{}, "sts.us-isob-east-1.sc2s.sgov.gov"},
		{"aws-iso-e", "eu-isoe-west-1", "aws-iso-e", eksauth.TokenOptions{}, "sts.eu-isoe-west-1.cloud.adc-e.uk"},
		{"aws-iso-f", "us-isof-south-1", "aws-iso-f", eksauth.TokenOptions{}, "sts.us-isof-south-1.csp.hci.ic.gov"},
		{"aws-iso FIPS", "us-iso-west-1", "aws-iso", eksauth.TokenOptions{FIPS: true}, "sts-fips.us-iso-west-1.c2s.ic.gov"},
		{"aws-eusc", "eusc-de-east-1", "aws-eusc", eksauth.TokenOptions{}, "sts.eusc-de-east-1.amazonaws.eu"},
		{"aws-eusc dual-stack", "eusc-de-east-1", "aws-eusc", eksauth.TokenOptions{DualStack: true}, "sts.eusc-de-east-1.api.amazonwebservices.eu"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sigRegion := tc.region
			if tc.opts.GlobalEndpoint {
				sigRegion = "us-east-1"
			}
			s := localSTS(t, sigRegion)
			g := generator(t, tc.region, s.Config().Credentials, tc.opts)
			tok, err := g.Token(context.Background(), "prod-cluster")
			if err != nil {
				t.Fatal(err)
			}
			if tok.Host != tc.host || g.Partition() != tc.partition {
				t.Fatalf("host %s partition %s, want %s %s", tok.Host, g.Partition(), tc.host, tc.partition)
			}
			id, err := referenceVerifier(t, s, "prod-cluster", tc.partition, tc.region).Verify(tok.Value)
			if err != nil {
				t.Fatalf("reference verifier: %v", err)
			}
			if id.CanonicalARN != "arn:aws:iam::111122223333:role/ci-deployer" || id.STSEndpoint != tc.host {
				t.Errorf("identity = %+v", id)
			}
			// The local STS saw the cluster header signed and the session token.
			reqs := s.Requests()
			if len(reqs) != 1 || reqs[0].Header.Get("X-K8s-Aws-Id") != "prod-cluster" || reqs[0].Query.Get("X-Amz-Security-Token") != awstest.SessionToken || reqs[0].Query.Get("X-Amz-Expires") != "60" {
				t.Errorf("STS request = %+v", reqs)
			}
		})
	}
}

func TestTokenForAnotherClusterIsRejectedBySTS(t *testing.T) {
	s := localSTS(t, "us-west-2")
	tok, err := generator(t, "us-west-2", s.Config().Credentials, eksauth.TokenOptions{}).Token(context.Background(), "cluster-a")
	if err != nil {
		t.Fatal(err)
	}
	_, err = referenceVerifier(t, s, "cluster-b", "aws", "us-west-2").Verify(tok.Value)
	if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("err = %v, want STS SignatureDoesNotMatch", err)
	}
}

func TestTokensWithoutSessionToken(t *testing.T) {
	long := aws.Credentials{AccessKeyID: "AKIDLONGTERM00000001", SecretAccessKey: "long-term-secret"}
	s := localSTS(t, "ap-southeast-2", long)
	tok, err := generator(t, "ap-southeast-2", staticCreds(long), eksauth.TokenOptions{}).Token(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := referenceVerifier(t, s, "c1", "aws", "ap-southeast-2").Verify(tok.Value); err != nil {
		t.Fatal(err)
	}
	p, err := eksauth.ParseToken(tok.Value, eksauth.ValidateOptions{Partition: "aws"})
	if err != nil || p.SessionToken || p.AccessKeyID != long.AccessKeyID {
		t.Fatalf("parsed %+v, %v", p, err)
	}
}

func TestTokenAgeAgainstTheReferenceVerifier(t *testing.T) {
	cases := []struct {
		name  string
		age   time.Duration
		valid bool
	}{
		{"13 minutes old is accepted", 13 * time.Minute, true},
		{"15 minutes old is rejected", 15 * time.Minute, false},
		{"16 minutes old is rejected", 16 * time.Minute, false},
	}
	s := localSTS(t, "us-west-2")
	v := referenceVerifier(t, s, "prod", "aws", "us-west-2")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The reference verifier uses the wall clock, so the token is signed in the past.
			g := generator(t, "us-west-2", s.Config().Credentials, eksauth.TokenOptions{Now: func() time.Time { return time.Now().Add(-tc.age) }})
			tok, err := g.Token(context.Background(), "prod")
			if err != nil {
				t.Fatal(err)
			}
			_, refErr := v.Verify(tok.Value)
			_, ownErr := eksauth.ParseToken(tok.Value, eksauth.ValidateOptions{Partition: "aws"})
			if (refErr == nil) != tc.valid || (ownErr == nil) != tc.valid {
				t.Fatalf("reference: %v, ParseToken: %v, want valid=%t", refErr, ownErr, tc.valid)
			}
			if !tc.valid && !errors.Is(ownErr, eksauth.ErrTokenExpired) {
				t.Errorf("ParseToken error %v is not ErrTokenExpired", ownErr)
			}
			if got := tok.Expiration.Sub(tok.SignedAt); got != eksauth.TokenLifetime {
				t.Errorf("lifetime %s, want 14m", got)
			}
		})
	}
}

// The helpers below are copies of the small ones beside package eksauth's own tests
// (eksauth/token_test.go, eksauth/source_test.go, eksauth/cluster_test.go): test files of another
// module cannot be imported.

func generator(t testing.TB, region string, creds aws.CredentialsProvider, opts eksauth.TokenOptions) *eksauth.TokenGenerator {
	t.Helper()
	opts.Credentials = creds
	g, err := eksauth.NewTokenGenerator(aws.Config{Region: region}, func(o *eksauth.TokenOptions) { *o = opts })
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func staticCreds(c aws.Credentials) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
}

// fakeClock is a settable clock shared by the token generator and the webhook.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock    { c := &fakeClock{}; c.ns.Store(t.UnixNano()); return c }
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newLocalEKS serves EKS DescribeCluster for the given clusters (name -> JSON "cluster" object).
func newLocalEKS(t *testing.T, clusters map[string]map[string]any) *awstest.Server {
	s := awstest.New(t, awstest.Options{Service: "eks", Region: "eu-west-1", Protocol: awstest.RESTJSON})
	s.Handle("GET /clusters/{name}", func(w http.ResponseWriter, r *http.Request) {
		c, ok := clusters[r.PathValue("name")]
		if !ok {
			awstest.WriteRESTJSONError(w, 404, "ResourceNotFoundException", "No cluster found for name: "+r.PathValue("name"))
			return
		}
		awstest.WriteJSON(w, "application/json", map[string]any{"cluster": c})
	})
	return s
}

func clusterJSON(endpoint string, caPEM []byte, status, mode string) map[string]any {
	return map[string]any{
		"name": "prod", "arn": "arn:aws:eks:eu-west-1:111122223333:cluster/prod", "status": status,
		"endpoint": endpoint, "certificateAuthority": map[string]any{"data": base64.StdEncoding.EncodeToString(caPEM)},
		"accessConfig": map[string]any{"authenticationMode": mode},
	}
}
