// Command workload is the demo's stand-in for an application in a pod: it loads the AWS SDK's
// default configuration from its environment alone (config.LoadDefaultConfig, which picks the web
// identity provider from AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE as the pod identity webhook
// sets them) and prints who STS GetCallerIdentity says it is, as JSON on one line. It exits 1 with
// the SDK's error on standard error when that fails.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		cancel()
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("loading the AWS configuration: %w", err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("retrieving credentials: %w", err)
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("sts GetCallerIdentity: %w", err)
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]string{
		"arn": aws.ToString(id.Arn), "account": aws.ToString(id.Account), "userId": aws.ToString(id.UserId),
		"credentialSource": creds.Source, "region": cfg.Region,
	})
}
