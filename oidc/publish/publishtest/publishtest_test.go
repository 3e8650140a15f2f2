package publishtest_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/ekslink/ekslink/oidc/publish/publishtest"
)

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestEndpointsAnswerLikeAWS(t *testing.T) {
	ctx := context.Background()
	fs3 := publishtest.NewS3(t, "eu-west-1")
	fiam := publishtest.NewIAM(t, "us-east-1")
	s3c := s3.NewFromConfig(fs3.Config(), func(o *s3.Options) { o.UsePathStyle = true })
	iamc := iam.NewFromConfig(fiam.Config())

	if _, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")}); apiCode(err) != "NoSuchBucket" {
		t.Fatalf("missing bucket: %v", err)
	}
	fs3.PutBucket("b", publishtest.Bucket{})
	if _, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")}); apiCode(err) != "NoSuchKey" {
		t.Fatalf("missing key: %v", err)
	}
	_, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader([]byte("hello")),
		ChecksumCRC32: aws.String("AAAAAA==")})
	if apiCode(err) != "BadDigest" {
		t.Fatalf("wrong CRC32: %v", err)
	}
	if _, err := s3c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String("b")}); apiCode(err) != "NoSuchBucketPolicy" {
		t.Fatalf("no policy: %v", err)
	}
	if _, err := iamc.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String("arn:aws:iam::123456789012:oidc-provider/x")}); apiCode(err) != "NoSuchEntity" {
		t.Fatalf("missing provider: %v", err)
	}
	out, err := iamc.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://x.example.com"), ClientIDList: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	p, ok := fiam.Provider(aws.ToString(out.OpenIDConnectProviderArn))
	if !ok || p.URL != "x.example.com" || len(p.ClientIDs) != 2 {
		t.Fatalf("provider %+v", p)
	}
	if _, err := iamc.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://x.example.com")}); apiCode(err) != "EntityAlreadyExists" {
		t.Fatalf("duplicate provider: %v", err)
	}
	// Writes lists attempted writes, accepted or not.
	if w := publishtest.Writes(fs3, fiam); len(w) != 3 || w[0] != "s3 PUT /b/k?x-id=PutObject" || w[2] != "iam Action=CreateOpenIDConnectProvider" {
		t.Fatalf("writes %q", w)
	}
}
