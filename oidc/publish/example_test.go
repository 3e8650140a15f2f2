package publish_test

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/ekslink/ekslink/oidc"
	"github.com/ekslink/ekslink/oidc/publish"
)

// Publishing a cluster's issuer to S3 and IAM (needs AWS credentials, so it is not run as a test).
func Example() {
	ctx := context.Background()
	const issuer = "https://s3.eu-west-1.amazonaws.com/my-cluster-irsa"
	keys, err := oidc.ParseKeyFiles("/etc/kubernetes/pki/sa.pub")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	disc, jwks, err := oidc.Documents(issuer, keys, oidc.DocumentOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("eu-west-1"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	res, err := publish.NewFromConfig(cfg).Publish(ctx, publish.Site{Issuer: issuer, Discovery: disc, JWKS: jwks, CreateBucket: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Println(res.ProviderARN, res.Changes)
}
