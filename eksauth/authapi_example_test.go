package eksauth_test

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ekslink/ekslink/eksauth"
)

// ExampleNewAuthClient shows how the EKS Auth endpoint is resolved and how its exceptions are matched.
func ExampleNewAuthClient() {
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	client, err := eksauth.NewAuthClient(cfg, eksauth.AuthOptions{
		// Do not let the environment (AWS_ENDPOINT_URL_EKS_AUTH) change the example's output.
		LookupEnv: func(string) (string, bool) { return "", false },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(client.Endpoint())

	// Errors of AssumeRoleForPodIdentity are *eksauth.AuthError values matching their exception name.
	err = &eksauth.AuthError{Code: eksauth.AuthResourceNotFoundException, StatusCode: 404}
	fmt.Println(errors.Is(err, eksauth.AuthResourceNotFoundException))

	// A real call: out, err := client.AssumeRoleForPodIdentity(ctx, "prod", serviceAccountToken)

	// Output:
	// https://eks-auth.eu-west-1.api.aws
	// true
}
