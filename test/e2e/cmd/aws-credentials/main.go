// Command aws-credentials is the workload of the end-to-end tests' pod identity and IRSA checks
// (never shipped): it loads the AWS SDK's default configuration, as any application does, so that
// the container credentials provider finds the EKS Pod Identity agent through
// AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, or the web
// identity provider trades the token of AWS_WEB_IDENTITY_TOKEN_FILE for AWS_ROLE_ARN at STS (what
// the pod identity webhook injects), retrieves credentials, calls STS GetCallerIdentity with them and prints
//
//	credentials source <provider> access key <id> expires <RFC 3339>
//	caller <ARN>
//
// It exits non-zero when either step fails. The secret parts of the credentials are never printed.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "aws-credentials:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("loading the SDK configuration: %w", err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("retrieving credentials: %w", err)
	}
	fmt.Printf("credentials source %s access key %s expires %s\n", creds.Source, creds.AccessKeyID, creds.Expires.UTC().Format(time.RFC3339))
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("GetCallerIdentity: %w", err)
	}
	fmt.Printf("caller %s\n", *out.Arn)
	return nil
}
