package registration_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ekslink/ekslink/registration"
	"github.com/ekslink/ekslink/statestore"
)

func Example() {
	// A stand-in for SSM; in a cluster leave BaseEndpoint unset: the region picks the endpoint.
	ssm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"InstanceId":"mi-0123456789abcdef0"}`)
	}))
	defer ssm.Close()
	client, _ := registration.NewFromConfig(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(ssm.URL)})

	ctx := context.Background()
	store := statestore.NewMemory() // in a cluster: statestore.NewSecret(clientset, "eks-connector", "eks-connector-state-0", statestore.SecretOptions{})
	reg, err := registration.New(store,
		registration.Activation{ID: "11111111-2222-4333-8444-555555555555", Code: "ActivationCode0123456789"},
		registration.Options{Region: "eu-west-1", Client: client})
	if err != nil {
		fmt.Println(err)
		return
	}
	state, err := reg.Ensure(ctx) // idempotent: a second call reuses the recorded registration
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, _ := os.MkdirTemp("", "vault")
	defer os.RemoveAll(dir)
	if err := registration.WriteVault(ctx, dir, state, registration.VaultOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	manifest, _ := os.ReadFile(filepath.Join(dir, registration.ManifestFile))
	fmt.Println(state.InstanceID)
	fmt.Println(string(manifest))
	// Output:
	// mi-0123456789abcdef0
	// {"InstanceFingerprint":"/var/lib/amazon/ssm/Vault/Store/InstanceFingerprint","RegistrationKey":"/var/lib/amazon/ssm/Vault/Store/RegistrationKey"}
}
