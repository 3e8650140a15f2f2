package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/internal/demo"
	"github.com/ekslink/ekslink/internal/ssmagent"
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
	if _, err := envtest.FindBinaries(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set, so this is a failure)", err)
		}
		t.Skipf("skipping end-to-end test: %v", err)
	}
}

// TestEndToEnd is `make demo`: every step must behave as expected, and the connector's lifecycle
// runs last (step 12 of 12): registering again changes nothing, the status is "connected",
// deregistration leaves no managed instance in SSM.
func TestEndToEnd(t *testing.T) {
	requireControlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var transcript bytes.Buffer
	require.NoError(t, demo.Run(ctx, demo.Options{BinDir: binDir, Transcript: &transcript}))
	out := transcript.String()
	i := strings.Index(out, fmt.Sprintf("[%d/%d] Connector lifecycle", demo.Steps, demo.Steps))
	require.GreaterOrEqual(t, i, 0, "the lifecycle is the last step:\n%s", out)
	last := out[i:]
	for _, want := range []string{
		"no change, no RegisterCluster call",
		`verdict "connected", EKS ACTIVE`,
		"cluster deregistered: true",
		"no managed instance left in SSM",
		fmt.Sprintf("All %d steps behaved as expected", demo.Steps),
	} {
		require.Contains(t, last, want)
	}
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

// TestConnectorRestartRestoresRegistration lets the agent rotate its key (the agent's way: in place,
// publicKey left stale; internal/ssmagent), restarts the pod sandbox (init runs again on the
// surviving vault after a second rotation the stopped sync never saw), then kills the connector's
// processes, loses the vault (an emptyDir) and runs init again: the registration comes back from
// the state Secret with the newest rotated key (no lock-out) and SSM sees no second registration.
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
	synced, err := d.State(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, d.Instances())
	// SSM answers a repeated registration of the same material with the same instance, so the
	// instance count alone cannot show that init did not register again; the call count does.
	callsBefore := d.AWS.RegisterCalls()

	// Pod sandbox restart: the proxy (and its key sync) is gone, the vault survives, and the agent
	// rotates once more before it stops. Init adopts that key instead of writing the Secret's.
	require.NoError(t, d.KillConnector(false))
	rotated, err := registration.GenerateKey(time.Now())
	require.NoError(t, err)
	agentRecord, err := (&ssmagent.Vault{Dir: d.VaultDir()}).UpdatePrivateKey(rotated.PrivateKey, ssmagent.KeyType, time.Now())
	require.NoError(t, err)
	var written ssmagent.InstanceInfo
	require.NoError(t, json.Unmarshal(agentRecord, &written))
	require.NotEqual(t, rotated.PublicKey, written.PublicKey, "the agent's record keeps a stale publicKey")
	require.NoError(t, d.ConnectorInit(ctx))
	before, err := d.State(ctx)
	require.NoError(t, err)
	require.Equal(t, rotated.PrivateKey, before.Key.PrivateKey, "init adopted the key the agent rotated")
	require.Equal(t, rotated.PublicKey, before.Key.PublicKey, "public key derived from the private key")
	require.Equal(t, written.PrivateKeyCreatedDate, before.Key.CreatedDate, "the agent's date kept verbatim")
	require.Equal(t, synced.Key.PrivateKey, before.PreviousKeys[0].PrivateKey)
	vaultBefore, err := registration.ReadVault(d.VaultDir())
	require.NoError(t, err)
	require.Equal(t, rotated.PrivateKey, vaultBefore.RegistrationKey.PrivateKey, "init did not put back the Secret's older key")

	require.NoError(t, d.KillConnector(true))
	_, err = os.Stat(d.VaultDir())
	require.True(t, os.IsNotExist(err), "the vault is gone")

	require.NoError(t, d.ConnectorInit(ctx))
	after, err := d.State(ctx)
	require.NoError(t, err)
	require.Equal(t, before.InstanceID, after.InstanceID)
	require.Equal(t, before.Key, after.Key)
	require.Equal(t, 1, d.Instances(), "SSM saw no second registration")
	require.Equal(t, callsBefore, d.AWS.RegisterCalls(), "init restored the registration without calling SSM")
	vaultAfter, err := registration.ReadVault(d.VaultDir())
	require.NoError(t, err)
	require.Equal(t, vaultBefore, vaultAfter, "the vault is restored byte for byte")
	// What the agent loads from the restored vault (instance_info.go loadServerInfo): the rotated
	// private key, its date, and a publicKey that belongs to it.
	info, err := (&ssmagent.Vault{Dir: d.VaultDir()}).Load()
	require.NoError(t, err)
	require.Equal(t, ssmagent.InstanceInfo{InstanceID: before.InstanceID, Region: before.Region, PrivateKey: rotated.PrivateKey,
		PublicKey: rotated.PublicKey, PrivateKeyType: ssmagent.KeyType, PrivateKeyCreatedDate: written.PrivateKeyCreatedDate}, info)

	// The proxy comes back on the same socket (the stale socket file is replaced).
	require.NoError(t, d.ConnectorProxy(ctx))
}
