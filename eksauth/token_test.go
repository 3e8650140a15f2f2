package eksauth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"sigs.k8s.io/aws-iam-authenticator/pkg/token"

	"github.com/ekslink/ekslink/eksauth"
	"github.com/ekslink/ekslink/internal/awstest"
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

func generator(t testing.TB, region string, creds aws.CredentialsProvider, opts eksauth.TokenOptions) *eksauth.TokenGenerator {
	t.Helper()
	opts.Credentials = creds
	g, err := eksauth.NewTokenGenerator(aws.Config{Region: region}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func staticCreds(c aws.Credentials) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
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

type expiringCreds struct{ c aws.Credentials }

func (e expiringCreds) Retrieve(context.Context) (aws.Credentials, error) { return e.c, nil }

func TestExpirationIsClampedToTheCredentials(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	base := aws.Credentials{AccessKeyID: "ASIAEXAMPLE000000001", SecretAccessKey: "s", SessionToken: "t", CanExpire: true}
	cases := []struct {
		name    string
		expires time.Time
		want    time.Time
		err     error
	}{
		{"credentials outliving the token", now.Add(time.Hour), now.Add(14 * time.Minute), nil},
		{"credentials expiring first", now.Add(5 * time.Minute), now.Add(5 * time.Minute), nil},
		{"expired credentials", now.Add(-time.Second), time.Time{}, eksauth.ErrCredentialsExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.Expires = tc.expires
			tok, err := generator(t, "eu-west-1", expiringCreds{c}, eksauth.TokenOptions{Now: clock}).Token(context.Background(), "c")
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !tok.Expiration.Equal(tc.want) {
				t.Errorf("expiration %s, want %s", tok.Expiration, tc.want)
			}
		})
	}
}

func TestGeneratorRefusesWhatEKSWouldReject(t *testing.T) {
	creds := staticCreds(aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s"})
	cases := []struct {
		name   string
		region string
		opts   eksauth.TokenOptions
	}{
		{"no region (no us-east-1 fallback)", "", eksauth.TokenOptions{}},
		{"malformed region", "moon", eksauth.TokenOptions{}},
		{"FIPS pseudo-region", "fips-us-east-1", eksauth.TokenOptions{}},
		{"FIPS pseudo-region of another partition", "fips-us-gov-west-1", eksauth.TokenOptions{}},
		{"FIPS pseudo-region suffix", "us-west-2-fips", eksauth.TokenOptions{}},
		{"global endpoint outside aws", "cn-north-1", eksauth.TokenOptions{GlobalEndpoint: true}},
		{"global endpoint with FIPS", "us-east-1", eksauth.TokenOptions{GlobalEndpoint: true, FIPS: true}},
		{"dual-stack where EKS accepts none", "us-iso-east-1", eksauth.TokenOptions{DualStack: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Credentials = creds
			if _, err := eksauth.NewTokenGenerator(aws.Config{Region: tc.region}, tc.opts); err == nil {
				t.Fatal("no error")
			}
		})
	}
	t.Run("anonymous credentials", func(t *testing.T) {
		g := generator(t, "eu-west-1", aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return aws.Credentials{}, nil }), eksauth.TokenOptions{})
		if _, err := g.Token(context.Background(), "c"); err == nil || !strings.Contains(err.Error(), "access key") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("oversized session token", func(t *testing.T) {
		g := generator(t, "eu-west-1", staticCreds(aws.Credentials{AccessKeyID: "ASIA", SecretAccessKey: "s", SessionToken: strings.Repeat("x", 3000)}), eksauth.TokenOptions{})
		_, err := g.Token(context.Background(), "c")
		var te *eksauth.TokenError
		if !errors.As(err, &te) || te.Rule != "length" {
			t.Fatalf("err = %v, want a length TokenError", err)
		}
	})
	for _, cluster := range []string{"", "-leading-dash", "has space", strings.Repeat("a", 101)} {
		t.Run("cluster "+cluster, func(t *testing.T) {
			g := generator(t, "eu-west-1", creds, eksauth.TokenOptions{})
			if _, err := g.Token(context.Background(), cluster); !errors.Is(err, eksauth.ErrInvalidCluster) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// mutate decodes a token's URL, lets f change it and re-encodes it.
func mutate(t *testing.T, tok string, f func(u *url.URL, q url.Values)) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, eksauth.TokenPrefix))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(string(raw))
	q := u.Query()
	f(u, q)
	if q != nil {
		u.RawQuery = q.Encode()
	}
	return eksauth.TokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(u.String()))
}

func TestParseTokenAppliesTheVerifierRules(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	g := generator(t, "eu-west-1", staticCreds(aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", SessionToken: "st"}), eksauth.TokenOptions{Now: clock})
	tok, err := g.Token(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	later := func(d time.Duration) func() time.Time { return func() time.Time { return now.Add(d) } }
	cases := []struct {
		name      string
		token     string
		partition string
		now       func() time.Time
		rule      string
	}{
		{"a fresh token is valid", tok.Value, "aws", clock, ""},
		{"13 minutes later it is still valid", tok.Value, "aws", later(13 * time.Minute), ""},
		{"16 minutes later it has expired", tok.Value, "aws", later(16 * time.Minute), "date"},
		{"another partition's authenticator refuses it", tok.Value, "aws-cn", clock, "host"},
		{"padding is refused", tok.Value + "=", "aws", clock, "encoding"},
		{"a missing prefix is refused", strings.TrimPrefix(tok.Value, eksauth.TokenPrefix), "aws", clock, "prefix"},
		{"oversized tokens are refused", tok.Value + strings.Repeat("A", 4096), "aws", clock, "length"},
		{"http is refused", mutate(t, tok.Value, func(u *url.URL, _ url.Values) { u.Scheme = "http" }), "aws", clock, "scheme"},
		{"a port is refused", mutate(t, tok.Value, func(u *url.URL, _ url.Values) { u.Host += ":443" }), "aws", clock, "host"},
		{"a non-STS host is refused", mutate(t, tok.Value, func(u *url.URL, _ url.Values) { u.Host = "evil.example.com" }), "aws", clock, "host"},
		{"a FIPS pseudo-region host is refused", mutate(t, tok.Value, func(u *url.URL, _ url.Values) { u.Host = "sts.fips-us-gov-west-1.amazonaws.com" }), "aws", clock, "host"},
		{"a path is refused", mutate(t, tok.Value, func(u *url.URL, _ url.Values) { u.Path = "/x" }), "aws", clock, "path"},
		{"unknown parameters are refused", mutate(t, tok.Value, func(_ *url.URL, q url.Values) { q.Set("Foo", "1") }), "aws", clock, "query"},
		{"duplicate parameters are refused", mutate(t, tok.Value, func(_ *url.URL, q url.Values) { q.Add("Action", "GetCallerIdentity") }), "aws", clock, "query"},
		{"case-duplicated parameters are refused", mutate(t, tok.Value, func(_ *url.URL, q url.Values) { q.Set("action", "GetCallerIdentity") }), "aws", clock, "query"},
		{"another action is refused", mutate(t, tok.Value, func(_ *url.URL, q url.Values) { q.Set("Action", "AssumeRole") }), "aws", clock, "action"},
		{"an unsigned cluster header is refused", mutate(t, tok.Value, func(_ *url.URL, q url.Values) { q.Set("X-Amz-SignedHeaders", "host") }), "aws", clock, "signed-headers"},
		{"a missing X-Amz-Expires is refused", mutate(t, tok.Value, func(_ *url.URL, q url.Values) { q.Del("X-Amz-Expires") }), "aws", clock, "expires"},
		{"X-Amz-Expires above 900 is refused", mutate(t, tok.Value, func(_ *url.URL, q url.Values) { q.Set("X-Amz-Expires", "901") }), "aws", clock, "expires"},
		{"signing for another region is refused", mutate(t, tok.Value, func(_ *url.URL, q url.Values) {
			q.Set("X-Amz-Credential", strings.Replace(q.Get("X-Amz-Credential"), "eu-west-1", "us-east-1", 1))
		}), "aws", clock, "credential"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eksauth.ParseToken(tc.token, eksauth.ValidateOptions{Partition: tc.partition, Now: tc.now})
			if tc.rule == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var te *eksauth.TokenError
			if !errors.As(err, &te) || te.Rule != tc.rule || !errors.Is(err, eksauth.ErrInvalidToken) {
				t.Fatalf("err = %v, want rule %q", err, tc.rule)
			}
		})
	}
}

func TestTokenStringIsRedacted(t *testing.T) {
	g := generator(t, "eu-west-1", staticCreds(aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s"}), eksauth.TokenOptions{})
	tok, err := g.Token(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{tok.String(), tok.GoString()} {
		if strings.Contains(s, "k8s-aws-v1") || strings.Contains(s, "Signature") {
			t.Fatalf("%q leaks the token", s)
		}
	}
}

func BenchmarkToken(b *testing.B) {
	g := generator(b, "eu-west-1", staticCreds(aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", SessionToken: strings.Repeat("t", 800)}), eksauth.TokenOptions{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Token(ctx, "prod-cluster"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseToken(b *testing.B) {
	g := generator(b, "eu-west-1", staticCreds(aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", SessionToken: "t"}), eksauth.TokenOptions{})
	tok, _ := g.Token(context.Background(), "prod-cluster")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := eksauth.ParseToken(tok.Value, eksauth.ValidateOptions{Partition: "aws"}); err != nil {
			b.Fatal(err)
		}
	}
}
