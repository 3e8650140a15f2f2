package publish_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/oidc"
)

// What Publish puts in place is what STS trusts: the documents it wrote to the bucket, served under
// the issuer's name (https://s3.eu-west-1.amazonaws.com/ekslink-irsa), and the IAM OIDC provider it
// created through publishtest's IAM, which is envtest/awsfake's, whose STS evaluates
// AssumeRoleWithWebIdentity against that provider and a role created through the same IAM with
// oidc.TrustPolicy. A token of another service account is refused by the trust policy.
func TestPublishedIssuerIsTrustedBySTS(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	key := envtest.NewECKey()
	pub, err := envtest.PublicKeyPEM(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := oidc.ParseKeys(pub)
	if err != nil {
		t.Fatal(err)
	}
	disc, jwks, err := oidc.Documents(issuer, keys, oidc.DocumentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.pub.Publish(ctx, publishSite(disc, jwks))
	if err != nil {
		t.Fatal(err)
	}

	// The bucket, as S3 serves it publicly: GET /<bucket>/<key>.
	bucketSrv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := w.s3.Bucket("ekslink-irsa")
		o, ok := b.Objects[strings.TrimPrefix(r.URL.Path, "/ekslink-irsa/")]
		if !ok {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", o.ContentType)
		_, _ = rw.Write(o.Body)
	}))
	t.Cleanup(bucketSrv.Close)
	set := w.iam.Set
	set.SetIssuerClient(awsfake.IssuerClient(bucketSrv))

	policy, err := oidc.TrustPolicy(oidc.TrustPolicyOptions{ProviderARN: res.ProviderARN, Issuer: issuer, Namespace: "apps", ServiceAccount: "s3-reader"})
	if err != nil {
		t.Fatal(err)
	}
	iamc := iam.NewFromConfig(w.iam.Config())
	role, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("s3-reader"), AssumeRolePolicyDocument: aws.String(string(policy))})
	if err != nil {
		t.Fatal(err)
	}
	stsc := sts.New(sts.Options{Region: set.Region(), BaseEndpoint: aws.String(set.STS.URL), HTTPClient: set.STS.Client(), RetryMaxAttempts: 1})
	token := func(sa string) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: keys[0].ID}}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		raw, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: issuer, Subject: "system:serviceaccount:apps:" + sa, Audience: jwt.Audience{oidc.DefaultAudience},
			Expiry: jwt.NewNumericDate(now.Add(time.Hour)), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), IssuedAt: jwt.NewNumericDate(now)}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	out, err := stsc.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("app"), WebIdentityToken: aws.String(token("s3-reader"))})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Provider) != res.ProviderARN || aws.ToString(out.AssumedRoleUser.Arn) != "arn:aws:sts::123456789012:assumed-role/s3-reader/app" {
		t.Fatalf("provider %s, assumed %s", aws.ToString(out.Provider), aws.ToString(out.AssumedRoleUser.Arn))
	}
	_, err = stsc.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("app"), WebIdentityToken: aws.String(token("other"))})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
		t.Fatalf("another service account: %v", err)
	}
}
