package registration_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"

	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/registration"
)

func eksFake(t *testing.T) (*awsfake.Set, *eks.Client) {
	t.Helper()
	set, err := awsfake.Start(awsfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	return set, eks.NewFromConfig(set.Config(), func(o *eks.Options) { o.BaseEndpoint = aws.String(set.EKS.URL) })
}

// EnsureCluster registers once; the second call reads the cluster and writes nothing, and a
// conflicting role is ErrClusterConflict. The activation file is private (0600).
func TestEnsureClusterIsIdempotent(t *testing.T) {
	set, client := eksFake(t)
	ctx := context.Background()
	spec := registration.ClusterSpec{Name: "edge", RoleARN: "arn:aws:iam::111122223333:role/eks-connector-agent"}
	reg, created, err := registration.EnsureCluster(ctx, client, spec)
	if err != nil || !created || reg.Activation.Code == "" || reg.Region != "us-west-2" {
		t.Fatalf("first: %+v %v %v", reg, created, err)
	}
	again, created, err := registration.EnsureCluster(ctx, client, spec)
	if err != nil || created || again.Activation.ID != reg.Activation.ID || again.Activation.Code != "" || set.Calls("RegisterCluster") != 1 {
		t.Fatalf("second: %+v %v %v", again, created, err)
	}
	spec.Provider = "GKE"
	if _, _, err := registration.EnsureCluster(ctx, client, spec); !errors.Is(err, registration.ErrClusterConflict) {
		t.Fatalf("conflict: %v", err)
	}
	path := filepath.Join(t.TempDir(), "a.json")
	if err := registration.WriteActivationFile(path, "edge", reg); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi, err)
	}
	f, err := registration.ReadActivationFile(path)
	if err != nil || f.ActivationCode != reg.Activation.Code || !f.ActivationExpiry.Equal(reg.Expiry) {
		t.Fatalf("read back %+v %v", f, err)
	}
}
