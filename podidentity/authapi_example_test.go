package podidentity_test

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ekslink/ekslink/podidentity"
)

// ExampleNewFromConfig builds the EKS Auth client the way aws-sdk-go-v2 builds its clients: from an
// aws.Config plus functions that adjust its Options (here, a local EKS Auth emulator), and shows how
// its exceptions are matched.
func ExampleNewFromConfig() {
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	client, err := podidentity.NewFromConfig(cfg, func(o *podidentity.Options) {
		o.BaseEndpoint = aws.String("http://127.0.0.1:8443")
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(client.Endpoint(), client.Region())

	// A real call: out, err := client.AssumeRoleForPodIdentity(ctx, "prod", serviceAccountToken)

	// Errors of AssumeRoleForPodIdentity are *podidentity.AuthError values matching their exception name.
	err = &podidentity.AuthError{Code: podidentity.AuthResourceNotFoundException, StatusCode: 404}
	fmt.Println(errors.Is(err, podidentity.AuthResourceNotFoundException))

	// Output:
	// http://127.0.0.1:8443 eu-west-1
	// true
}
