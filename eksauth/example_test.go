package eksauth_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ekslink/ekslink/eksauth"
	"github.com/ekslink/ekslink/iamarn"
)

func ExampleNewTokenGenerator() {
	cfg := aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	}
	signedAt := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	gen, err := eksauth.NewTokenGenerator(cfg, func(o *eksauth.TokenOptions) {
		o.FIPS = true
		o.Now = func() time.Time { return signedAt }
	})
	if err != nil {
		panic(err)
	}
	tok, err := gen.Token(context.Background(), "prod-cluster")
	if err != nil {
		panic(err)
	}
	fmt.Println(tok) // redacted: tokens are credentials

	p, err := eksauth.ParseToken(tok.Value, eksauth.ValidateOptions{Partition: "aws", Now: func() time.Time { return signedAt.Add(13 * time.Minute) }})
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Host, p.Region, p.ExpiresAt.Format(time.RFC3339))
	// Output:
	// EKS token for sts-fips.eu-west-1.amazonaws.com signed 2026-11-23T12:00:00Z, expires 2026-11-23T12:14:00Z
	// sts-fips.eu-west-1.amazonaws.com eu-west-1 2026-11-23T12:15:00Z
}

func ExampleSTSHost() {
	for _, region := range []string{"us-east-1", "cn-north-1", "us-gov-west-1", "us-isob-east-1", "eusc-de-east-1"} {
		// The partition is an iamarn.Partition, a type callers can name.
		var p iamarn.Partition
		host, _, p, err := eksauth.STSHost(region, false, false, false)
		if err != nil {
			panic(err)
		}
		fmt.Println(p.ID, host)
	}
	// Output:
	// aws sts.us-east-1.amazonaws.com
	// aws-cn sts.cn-north-1.amazonaws.com.cn
	// aws-us-gov sts.us-gov-west-1.amazonaws.com
	// aws-iso-b sts.us-isob-east-1.sc2s.sgov.gov
	// aws-eusc sts.eusc-de-east-1.amazonaws.eu
}
