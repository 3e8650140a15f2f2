package main

import (
	"context"
	"crypto"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/envtest/awsfake"
)

func TestMain(m *testing.M) { envtest.Main(m) }

// The example's main path, end to end: the AWS configuration comes from the environment (as on
// a node), the pod's token from the real API server's TokenRequest, EKS Auth is the local fake
// that verifies the token against the API server's keys, and the client is the AWS SDK's own
// container credentials provider, as in a pod.
func TestAPodGetsItsRoleThroughTheEmbeddedServer(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	keys := make([]crypto.PublicKey, 0, len(env.SigningKeys))
	for _, k := range env.SigningKeys {
		keys = append(keys, k.Public())
	}
	set, err := awsfake.Start(awsfake.Options{ServiceAccountIssuer: env.Issuer, ServiceAccountKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	vars, err := set.Env(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")

	ns := env.Namespace(t)
	env.CreateServiceAccount(t, ns, "reader")
	set.Associate(awsfake.Association{Cluster: "prod", Namespace: ns, ServiceAccount: "reader", RoleARN: "arn:aws:iam::111122223333:role/s3-reader"})
	token := env.Token(t, ns, "reader", []string{awsfake.PodIdentityAudience}, time.Hour)

	runCtx, stop := context.WithCancel(ctx)
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"--cluster-name=prod", "--listen=127.0.0.1:0"}, io.Discard, func(a net.Addr) { addrs <- a })
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("run stopped before listening: %v", err)
	}

	uri := "http://" + addr.String() + "/v1/credentials"
	provider := endpointcreds.New(uri, func(o *endpointcreds.Options) {
		o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) { return token, nil })
	})
	creds, err := provider.Retrieve(ctx)
	if err != nil {
		t.Fatalf("the SDK's container credentials provider: %v", err)
	}
	cfg := set.Config()
	cfg.Credentials = aws.NewCredentialsCache(provider)
	id, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(set.STS.URL) }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if arn := aws.ToString(id.Arn); !strings.HasPrefix(arn, "arn:aws:sts::111122223333:assumed-role/s3-reader/") {
		t.Errorf("the pod's credentials (%s…) are %s, want the s3-reader role", creds.AccessKeyID[:8], arn)
	}

	// A token of a service account without an association gets no credentials.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	env.CreateServiceAccount(t, ns, "other")
	req.Header.Set("Authorization", env.Token(t, ns, "other", []string{awsfake.PodIdentityAudience}, time.Hour))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a service account without an association: status %d, want 404", resp.StatusCode)
	}
}

func TestTheClusterNameIsRequired(t *testing.T) {
	err := run(context.Background(), nil, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "--cluster-name") {
		t.Fatalf("run without --cluster-name: %v", err)
	}
}
