package demo_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ekslink/ekslink/internal/demo"
)

// TestConnectorLifecycleLeavesNoOrphan is the lifecycle step after the connector registered through
// its real init process: a status verdict with the replica Online, then deregistration leaving no
// managed instance in SSM.
func TestConnectorLifecycleLeavesNoOrphan(t *testing.T) {
	requireControlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d, err := demo.New(demo.Options{BinDir: binDir})
	require.NoError(t, err)
	defer func() { require.NoError(t, d.Close()) }()
	for _, step := range []func(context.Context) error{d.StartControlPlane, d.StartAWS, d.RegisterCluster, d.InstallConnector, d.ConnectorInit, d.ConnectorLifecycle} {
		require.NoError(t, step(ctx))
	}
	require.Empty(t, d.AWS.Instances())
}
