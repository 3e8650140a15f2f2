package publish_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/ekslink/ekslink/internal/testenv"
	"github.com/ekslink/ekslink/oidc"
	"github.com/ekslink/ekslink/oidc/publish"
)

const issuer = "https://s3.eu-west-1.amazonaws.com/ekslink-irsa"

type world struct {
	s3  *fakeS3
	iam *fakeIAM
	pub *publish.Publisher
}

func newWorld(t *testing.T) *world {
	w := &world{s3: newFakeS3(t), iam: newFakeIAM(t)}
	// One aws.Config per endpoint: the production constructor, pointed at local servers.
	s3Pub := publish.New(w.s3.Config(), logr.Discard())
	iamPub := publish.New(w.iam.Config(), logr.Discard())
	w.pub = &publish.Publisher{S3: s3Pub.S3, IAM: iamPub.IAM, Region: "eu-west-1", Log: logr.Discard()}
	return w
}

func (w *world) writes() []string {
	var out []string
	for _, r := range w.s3.Requests() {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			out = append(out, "s3 "+r.Method+" "+r.Path+"?"+r.Query.Encode())
		}
	}
	for _, r := range w.iam.Requests() {
		body := string(r.Body)
		if !strings.Contains(body, "Action=List") && !strings.Contains(body, "Action=Get") {
			out = append(out, "iam "+body[:min(len(body), 60)])
		}
	}
	return out
}

func (w *world) reset() { w.s3.Reset(); w.iam.Reset() }

func site(t *testing.T) publish.Site {
	t.Helper()
	k, err := oidc.ParseKeys(mustPub(t))
	if err != nil {
		t.Fatal(err)
	}
	disc, jwks, err := oidc.Documents(issuer, k)
	if err != nil {
		t.Fatal(err)
	}
	return publish.Site{Issuer: issuer, Discovery: disc, JWKS: jwks, CreateBucket: true, Thumbprints: []string{"9E99A48A9960B14926BB7F3B02E22DA2B0AB7280"}}
}

func mustPub(t *testing.T) []byte {
	p, err := testenv.PublicKeyPEM(testenv.NewECKey().Public())
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
	b := w.s3.buckets["ekslink-irsa"]
	if o := b.objects[".well-known/openid-configuration"]; string(o.body) != string(s.Discovery) || o.contentType != "application/json" || o.cacheControl != oidc.CacheControl {
		t.Fatalf("discovery object = %+v", o)
	}
	if o := b.objects["openid/v1/jwks"]; string(o.body) != string(s.JWKS) || o.contentType != "application/jwk-set+json" {
		t.Fatalf("jwks object = %+v", o)
	}
	if !strings.Contains(b.policy, `"Principal":"*"`) || !strings.Contains(b.policy, "arn:aws:s3:::ekslink-irsa/openid/v1/jwks") {
		t.Fatalf("policy = %s", b.policy)
	}
	p := w.iam.providers["arn:aws:iam::123456789012:oidc-provider/s3.eu-west-1.amazonaws.com/ekslink-irsa"]
	if p == nil || p.clientIDs[0] != "sts.amazonaws.com" || p.thumbprints[0] != "9e99a48a9960b14926bb7f3b02e22da2b0ab7280" {
		t.Fatalf("providers = %+v", w.iam.providers)
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
	s.Discovery, s.JWKS, _ = oidc.Documents(issuer, k)
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
	w.s3.buckets["ekslink-irsa"] = &bucket{objects: map[string]object{},
		policy: `{"Version":"2012-10-17","Statement":[{"Sid":"Other","Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::ekslink-irsa/*"}]}`}
	w.iam.providers["arn:aws:iam::123456789012:oidc-provider/s3.eu-west-1.amazonaws.com/ekslink-irsa"] = &provider{url: "s3.eu-west-1.amazonaws.com/ekslink-irsa", clientIDs: []string{"other-client"}}
	s := site(t)
	s.Thumbprints = nil
	res, err := w.pub.Publish(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	b := w.s3.buckets["ekslink-irsa"]
	if !strings.Contains(b.policy, `"Sid":"Other"`) || !strings.Contains(b.policy, publish.PolicySid) {
		t.Fatalf("policy = %s", b.policy)
	}
	p := w.iam.providers["arn:aws:iam::123456789012:oidc-provider/s3.eu-west-1.amazonaws.com/ekslink-irsa"]
	if strings.Join(p.clientIDs, ",") != "other-client,sts.amazonaws.com" {
		t.Fatalf("client ids = %v (changes %q)", p.clientIDs, res.Changes)
	}
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
		w.s3.buckets["ekslink-irsa"] = &bucket{objects: map[string]object{}, pab: map[string]bool{"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true}}
		s := site(t)
		if _, err := w.pub.Publish(ctx, s); !errors.Is(err, publish.ErrPublicAccessBlocked) {
			t.Fatalf("err = %v", err)
		}
		s.UnblockPublicPolicy = true
		if _, err := w.pub.Publish(ctx, s); err != nil {
			t.Fatal(err)
		}
		if pab := w.s3.buckets["ekslink-irsa"].pab; pab["BlockPublicPolicy"] || !pab["BlockPublicAcls"] {
			t.Fatalf("public access block = %v", pab)
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
	w := &world{s3: newFakeS3Bench(b), iam: newFakeIAMBench(b)}
	w.pub = &publish.Publisher{S3: publish.New(w.s3.Config(), logr.Discard()).S3, IAM: publish.New(w.iam.Config(), logr.Discard()).IAM, Region: "eu-west-1", Log: logr.Discard()}
	k, err := oidc.GenerateKey(oidc.P256)
	if err != nil {
		b.Fatal(err)
	}
	disc, jwks, err := oidc.Documents(issuer, []oidc.Key{k})
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
