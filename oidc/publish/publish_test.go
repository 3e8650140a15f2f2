package publish_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/oidc"
	"github.com/ekslink/ekslink/oidc/publish"
	"github.com/ekslink/ekslink/oidc/publish/publishtest"
)

const (
	issuer      = "https://s3.eu-west-1.amazonaws.com/ekslink-irsa"
	providerARN = "arn:aws:iam::123456789012:oidc-provider/s3.eu-west-1.amazonaws.com/ekslink-irsa"
)

type world struct {
	s3  *publishtest.S3
	iam *publishtest.IAM
	pub *publish.Publisher
}

func newWorld(t testing.TB) *world {
	w := &world{s3: publishtest.NewS3(t, "eu-west-1"), iam: publishtest.NewIAM(t, "us-east-1")}
	// One aws.Config per endpoint: the production constructor, pointed at local servers.
	s3Pub := publish.NewFromConfig(w.s3.Config())
	iamPub := publish.NewFromConfig(w.iam.Config())
	w.pub = &publish.Publisher{S3: s3Pub.S3, IAM: iamPub.IAM, Region: "eu-west-1", Log: logr.Discard()}
	return w
}

func (w *world) writes() []string { return publishtest.Writes(w.s3, w.iam) }

func (w *world) reset() { w.s3.Reset(); w.iam.Reset() }

func site(t *testing.T) publish.Site {
	t.Helper()
	k, err := oidc.ParseKeys(mustPub(t))
	if err != nil {
		t.Fatal(err)
	}
	disc, jwks, err := oidc.Documents(issuer, k, oidc.DocumentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return publishSite(disc, jwks)
}

func publishSite(disc, jwks []byte) publish.Site {
	return publish.Site{Issuer: issuer, Discovery: disc, JWKS: jwks, CreateBucket: true, Thumbprints: []string{"9E99A48A9960B14926BB7F3B02E22DA2B0AB7280"}}
}

func mustPub(t *testing.T) []byte {
	p, err := envtest.PublicKeyPEM(envtest.NewECKey().Public())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPublishIsIdempotent(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	s := site(t)

	res, err := w.pub.Publish(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 5 { // bucket, 2 objects, policy, provider
		t.Fatalf("first run changes = %q", res.Changes)
	}
	if res.DiscoveryKey != ".well-known/openid-configuration" || res.JWKSKey != "openid/v1/jwks" || res.Bucket != "ekslink-irsa" {
		t.Fatalf("result = %+v", res)
	}
	b, _ := w.s3.Bucket("ekslink-irsa")
	if o := b.Objects[".well-known/openid-configuration"]; string(o.Body) != string(s.Discovery) || o.ContentType != "application/json" || o.CacheControl != oidc.CacheControl {
		t.Fatalf("discovery object = %+v", o)
	}
	if o := b.Objects["openid/v1/jwks"]; string(o.Body) != string(s.JWKS) || o.ContentType != "application/jwk-set+json" {
		t.Fatalf("jwks object = %+v", o)
	}
	assertPublicReadOfExactlyTheDocuments(t, b.Policy)
	p, ok := w.iam.Provider(providerARN)
	if !ok || p.ClientIDs[0] != "sts.amazonaws.com" || p.Thumbprints[0] != "9e99a48a9960b14926bb7f3b02e22da2b0ab7280" {
		t.Fatalf("provider = %+v", p)
	}
	if res.ProviderARN == "" {
		t.Fatal("no provider ARN")
	}

	// Second run: only reads.
	w.reset()
	res, err = w.pub.Publish(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 0 || len(w.writes()) != 0 {
		t.Fatalf("second run changed %q, wrote %q", res.Changes, w.writes())
	}
	if len(w.s3.Requests()) == 0 || len(w.iam.Requests()) == 0 {
		t.Fatal("second run did not even read")
	}

	// A new EC key rewrites only the JWKS (the algorithms, hence discovery, stay the same); a
	// thumbprint in another case is no change.
	w.reset()
	k, _ := oidc.ParseKeys(mustPub(t))
	s.Discovery, s.JWKS, _ = oidc.Documents(issuer, k, oidc.DocumentOptions{})
	s.Thumbprints = []string{"9e99a48a9960b14926bb7f3b02e22da2b0ab7280"}
	res, err = w.pub.Publish(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 1 || len(w.writes()) != 1 {
		t.Fatalf("rotation changes %q, writes %q", res.Changes, w.writes())
	}
}

func TestPublishKeepsOtherPolicyStatementsAndClientIDs(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.s3.PutBucket("ekslink-irsa", publishtest.Bucket{
		Policy: `{"Version":"2012-10-17","Statement":[{"Sid":"Other","Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::ekslink-irsa/*"}]}`})
	w.iam.PutProvider(providerARN, publishtest.Provider{URL: "s3.eu-west-1.amazonaws.com/ekslink-irsa", ClientIDs: []string{"other-client"}})
	s := site(t)
	s.Thumbprints = nil
	res, err := w.pub.Publish(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := w.s3.Bucket("ekslink-irsa")
	if !strings.Contains(b.Policy, `"Sid":"Other"`) || !strings.Contains(b.Policy, publish.PolicySid) {
		t.Fatalf("policy = %s", b.Policy)
	}
	p, _ := w.iam.Provider(providerARN)
	if strings.Join(p.ClientIDs, ",") != "other-client,sts.amazonaws.com" {
		t.Fatalf("client ids = %v (changes %q)", p.ClientIDs, res.Changes)
	}
}

// assertPublicReadOfExactlyTheDocuments checks the PolicySid statement grants anonymous
// s3:GetObject on the two documents and nothing else.
func assertPublicReadOfExactlyTheDocuments(t *testing.T, policy string) {
	t.Helper()
	var doc struct {
		Statement []map[string]any
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		t.Fatalf("policy %s: %v", policy, err)
	}
	n := 0
	for _, st := range doc.Statement {
		if st["Sid"] != publish.PolicySid {
			continue
		}
		n++
		got, _ := json.Marshal(map[string]any{"Effect": st["Effect"], "Principal": st["Principal"], "Action": st["Action"], "Resource": st["Resource"], "Condition": st["Condition"], "NotResource": st["NotResource"], "NotAction": st["NotAction"]})
		want := `{"Action":"s3:GetObject","Condition":null,"Effect":"Allow","NotAction":null,"NotResource":null,"Principal":"*","Resource":["arn:aws:s3:::ekslink-irsa/.well-known/openid-configuration","arn:aws:s3:::ekslink-irsa/openid/v1/jwks"]}`
		if string(got) != want || len(st) != 5 {
			t.Fatalf("statement %v, want %s", st, want)
		}
	}
	if n != 1 {
		t.Fatalf("%d statements with Sid %s in %s", n, publish.PolicySid, policy)
	}
}

func TestPublishNarrowsAWidenedOwnStatement(t *testing.T) {
	w := newWorld(t)
	w.s3.PutBucket("ekslink-irsa", publishtest.Bucket{
		Policy: `{"Version":"2012-10-17","Statement":[{"Sid":"` + publish.PolicySid + `","Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::ekslink-irsa/*"}]}`})
	if _, err := w.pub.Publish(context.Background(), site(t)); err != nil {
		t.Fatal(err)
	}
	b, _ := w.s3.Bucket("ekslink-irsa")
	assertPublicReadOfExactlyTheDocuments(t, b.Policy)
}

func TestPublishRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("missing bucket without CreateBucket", func(t *testing.T) {
		w := newWorld(t)
		s := site(t)
		s.CreateBucket = false
		if _, err := w.pub.Publish(ctx, s); !errors.Is(err, publish.ErrBucketMissing) {
			t.Fatalf("err = %v", err)
		}
		if len(w.writes()) != 0 {
			t.Fatalf("wrote %q", w.writes())
		}
	})
	t.Run("block public access stops before the policy", func(t *testing.T) {
		w := newWorld(t)
		w.s3.PutBucket("ekslink-irsa", publishtest.Bucket{PublicAccessBlock: map[string]bool{"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true}})
		s := site(t)
		if _, err := w.pub.Publish(ctx, s); !errors.Is(err, publish.ErrPublicAccessBlocked) {
			t.Fatalf("err = %v", err)
		}
		s.UnblockPublicPolicy = true
		if _, err := w.pub.Publish(ctx, s); err != nil {
			t.Fatal(err)
		}
		if b, _ := w.s3.Bucket("ekslink-irsa"); b.PublicAccessBlock["BlockPublicPolicy"] || !b.PublicAccessBlock["BlockPublicAcls"] {
			t.Fatalf("public access block = %v", b.PublicAccessBlock)
		}
	})
	t.Run("dry run writes nothing", func(t *testing.T) {
		w := newWorld(t)
		s := site(t)
		s.DryRun = true
		res, err := w.pub.Publish(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Changes) == 0 || len(w.writes()) != 0 {
			t.Fatalf("changes %q writes %q", res.Changes, w.writes())
		}
	})
	t.Run("jwks_uri outside the issuer", func(t *testing.T) {
		w := newWorld(t)
		s := site(t)
		k, _ := oidc.ParseKeys(mustPub(t))
		s.Discovery, _, _ = oidc.Documents(issuer, k, oidc.DocumentOptions{JWKSURI: "https://elsewhere.example.com/keys"})
		if _, err := w.pub.Publish(ctx, s); !errors.Is(err, publish.ErrInvalidSite) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wildcards in object keys never reach the bucket policy", func(t *testing.T) {
		k, _ := oidc.ParseKeys(mustPub(t))
		for _, tc := range []struct{ issuer, jwksURI string }{
			{issuer, issuer + "/*"},
			{issuer, issuer + "/keys?"},
			{issuer, issuer + "/${aws:username}"},
			{issuer, issuer + "/%2A"},
			{issuer, issuer + "/keys?x=1"},
			{issuer + "/%2A", ""},
			{"https://s3.eu-west-1.amazonaws.com/%2A/cluster", ""},
		} {
			w := newWorld(t)
			s := site(t)
			s.Issuer = tc.issuer
			var err error
			if s.Discovery, s.JWKS, err = oidc.Documents(tc.issuer, k, oidc.DocumentOptions{JWKSURI: tc.jwksURI}); err != nil {
				t.Fatal(err)
			}
			if _, err := w.pub.Publish(ctx, s); !errors.Is(err, publish.ErrInvalidSite) {
				t.Errorf("issuer %q jwks_uri %q: err = %v", tc.issuer, tc.jwksURI, err)
			}
			if len(w.writes()) != 0 {
				t.Errorf("issuer %q jwks_uri %q: wrote %q", tc.issuer, tc.jwksURI, w.writes())
			}
		}
	})
	t.Run("issuer in another region than the client", func(t *testing.T) {
		w := newWorld(t)
		w.pub.Region = "us-east-1"
		if _, err := w.pub.Publish(ctx, site(t)); !errors.Is(err, publish.ErrInvalidSite) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("explicit bucket other than the one the issuer names", func(t *testing.T) {
		k, _ := oidc.ParseKeys(mustPub(t))
		for _, iss := range []string{issuer, "https://ekslink-irsa.s3.eu-west-1.amazonaws.com"} {
			w := newWorld(t)
			s := site(t)
			s.Issuer, s.Bucket = iss, "another-bucket"
			s.Discovery, s.JWKS, _ = oidc.Documents(iss, k, oidc.DocumentOptions{})
			if _, err := w.pub.Publish(ctx, s); !errors.Is(err, publish.ErrInvalidSite) || len(w.writes()) != 0 {
				t.Errorf("%s: err = %v, writes %q", iss, err, w.writes())
			}
		}
	})
	t.Run("custom domain needs an explicit bucket", func(t *testing.T) {
		w := newWorld(t)
		s := site(t)
		s.Issuer = "https://oidc.example.com/cluster"
		if _, err := w.pub.Publish(ctx, s); !errors.Is(err, publish.ErrInvalidSite) {
			t.Fatalf("err = %v", err)
		}
	})
}

func BenchmarkPublishUpToDate(b *testing.B) {
	w := newWorld(b)
	k, err := oidc.GenerateKey(oidc.P256)
	if err != nil {
		b.Fatal(err)
	}
	disc, jwks, err := oidc.Documents(issuer, []oidc.Key{k}, oidc.DocumentOptions{})
	if err != nil {
		b.Fatal(err)
	}
	s := publish.Site{Issuer: issuer, Discovery: disc, JWKS: jwks, CreateBucket: true}
	if _, err := w.pub.Publish(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := w.pub.Publish(context.Background(), s)
		if err != nil || len(res.Changes) != 0 {
			b.Fatal(err, res.Changes)
		}
	}
}

func TestRegionFromIssuer(t *testing.T) {
	for issuer, want := range map[string]string{
		"https://s3.eu-west-1.amazonaws.com/b":     "eu-west-1",
		"https://s3-us-west-2.amazonaws.com/b":     "us-west-2",
		"https://b.s3.ap-south-1.amazonaws.com":    "ap-south-1",
		"https://s3.amazonaws.com/b":               "us-east-1",
		"https://s3.cn-north-1.amazonaws.com.cn/b": "cn-north-1",
		"https://oidc.example.com/b":               "",
	} {
		got, _ := publish.RegionFromIssuer(issuer)
		if got != want {
			t.Errorf("%s: %q, want %q", issuer, got, want)
		}
	}
}
