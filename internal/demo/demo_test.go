package demo_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ekslink/ekslink/internal/demo"
	"github.com/ekslink/ekslink/internal/testenv"
	"github.com/ekslink/ekslink/registration"
)

// binDir holds the reference binaries, built once for the package's tests.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ekslink-demo-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	if err := demo.BuildBinaries(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cancel()
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// requireControlPlane fails under CI and skips elsewhere when the control-plane binaries are missing.
func requireControlPlane(t *testing.T) {
	t.Helper()
	if _, err := testenv.FindBinaries(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set, so this is a failure)", err)
		}
		t.Skipf("skipping end-to-end test: %v", err)
	}
}

// TestEndToEnd is `make demo` without the transcript: every step must behave as expected.
func TestEndToEnd(t *testing.T) {
	requireControlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	require.NoError(t, demo.Run(ctx, demo.Options{BinDir: binDir}))
}

// TestConsoleAccessWithUserExtras runs the connector with user extras on: the RBAC rendered with
// them and a proxy sending them give every ARN exactly the access of the default run (which
// TestEndToEnd covers: RBAC as AWS documents it, Impersonate-User alone).
func TestConsoleAccessWithUserExtras(t *testing.T) {
	requireControlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d, err := demo.New(demo.Options{BinDir: binDir, UserExtras: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, d.Close()) }()
	for _, step := range []func(context.Context) error{d.StartControlPlane, d.StartAWS, d.RegisterCluster, d.InstallConnector, d.ConnectorInit, d.ConnectorProxy, d.ConsoleAccess} {
		require.NoError(t, step(ctx))
	}
}

// TestConnectorRestartRestoresRegistration lets the agent rotate its key, kills the connector's
// processes, loses the vault (an emptyDir) and runs init again: the registration comes back from
// the state Secret with the rotated key (no lock-out) and SSM sees no second registration.
func TestConnectorRestartRestoresRegistration(t *testing.T) {
	requireControlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d, err := demo.New(demo.Options{BinDir: binDir})
	require.NoError(t, err)
	defer func() { require.NoError(t, d.Close()) }()
	for _, step := range []func(context.Context) error{d.StartControlPlane, d.StartAWS, d.RegisterCluster, d.InstallConnector, d.ConnectorInit, d.ConnectorProxy, d.KeyRotation} {
		require.NoError(t, step(ctx))
	}
	before, err := d.State(ctx)
	require.NoError(t, err)
	vaultBefore, err := registration.ReadVault(d.VaultDir())
	require.NoError(t, err)
	require.Equal(t, 1, d.Instances())
	// SSM answers a repeated registration of the same material with the same instance, so the
	// instance count alone cannot show that init did not register again; the call count does.
	callsBefore := d.AWS.RegisterCalls()

	require.NoError(t, d.KillConnector(true))
	_, err = os.Stat(d.VaultDir())
	require.True(t, os.IsNotExist(err), "the vault is gone")

	require.NoError(t, d.ConnectorInit(ctx))
	after, err := d.State(ctx)
	require.NoError(t, err)
	require.Equal(t, before.InstanceID, after.InstanceID)
	require.Equal(t, before.Key, after.Key)
	require.NotEmpty(t, before.PreviousKeys, "the key in the Secret is the rotated one")
	require.Equal(t, before.Key.PublicKey, vaultBefore.RegistrationKey.PublicKey)
	require.Equal(t, 1, d.Instances(), "SSM saw no second registration")
	require.Equal(t, callsBefore, d.AWS.RegisterCalls(), "init restored the registration without calling SSM")
	vaultAfter, err := registration.ReadVault(d.VaultDir())
	require.NoError(t, err)
	require.Equal(t, vaultBefore, vaultAfter, "the vault is restored byte for byte")

	// The proxy comes back on the same socket (the stale socket file is replaced).
	require.NoError(t, d.ConnectorProxy(ctx))
}
