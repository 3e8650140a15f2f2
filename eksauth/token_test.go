package eksauth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ekslink/ekslink/eksauth"
)

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
			if _, err := eksauth.NewTokenGenerator(aws.Config{Region: tc.region}, func(o *eksauth.TokenOptions) { *o = tc.opts }); err == nil {
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
