package registration_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/internal/ssmagent"
	"github.com/ekslink/ekslink/registration"
	"github.com/ekslink/ekslink/statestore"
)

// recordingStore remembers every registration state that was saved.
type recordingStore struct {
	statestore.Store
	mu    sync.Mutex
	saved [][]byte
}

func (s *recordingStore) Save(ctx context.Context, data map[string][]byte, version string) (string, error) {
	v, err := s.Store.Save(ctx, data, version)
	if err == nil {
		s.mu.Lock()
		s.saved = append(s.saved, append([]byte(nil), data[registration.StateKey]...))
		s.mu.Unlock()
	}
	return v, err
}

// seedRegistration stores a registered state and writes its vault, as init would.
func seedRegistration(t *testing.T, store statestore.Store, vault string) *registration.State {
	t.Helper()
	key, err := registration.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st := &registration.State{ActivationID: testActivationID, Region: "eu-west-1", Status: registration.StatusRegistered,
		InstanceID: "mi-0123456789abcdef0", Fingerprint: "3f1c9a7e-4b2d-4e8f-9a6b-1c2d3e4f5a6b", Key: key}
	b, _ := json.Marshal(st)
	ctx := context.Background()
	doc, err := store.Load(ctx)
	version := ""
	if err == nil {
		version = doc.Version
	}
	if _, err := store.Save(ctx, map[string][]byte{registration.StateKey: b}, version); err != nil {
		t.Fatal(err)
	}
	if err := registration.WriteVault(ctx, vault, st, registration.VaultOptions{}); err != nil {
		t.Fatal(err)
	}
	return st
}

// rotatedKeyFile is what the agent writes after rotating (amazon-ssm-agent instance_info.go
// UpdatePrivateKey, modelled by internal/ssmagent): the record of instanceID with a new private key
// and date, and publicKey still the old key's.
func rotatedKeyFile(t *testing.T, st *registration.State, instanceID string) ([]byte, registration.Key) {
	t.Helper()
	key, err := registration.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ssmagent.InstanceInfo{InstanceID: instanceID, Region: st.Region, PrivateKey: key.PrivateKey,
		PublicKey: st.Key.PublicKey, PrivateKeyType: ssmagent.KeyType, PrivateKeyCreatedDate: time.Now().Format(ssmagent.DateLayout)})
	return b, key
}

// agentWrite rewrites the file in place the way the agent does: truncate, then write (not atomic).
func agentWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func loadState(t *testing.T, store statestore.Store) *registration.State {
	t.Helper()
	st, _, err := registration.LoadState(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func startKeySync(t *testing.T, store statestore.Store, vault string, reg prometheus.Registerer) *registration.KeySync {
	t.Helper()
	ks, err := registration.NewKeySync(store, vault, registration.KeySyncOptions{Registerer: reg,
		Interval: 300 * time.Millisecond, MinBackoff: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, CheckTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ks.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return ks
}

func TestKeySyncSavesARotatedKeyAndKeepsThePreviousOne(t *testing.T) {
	store := &recordingStore{Store: statestore.NewMemory()}
	vault := filepath.Join(t.TempDir(), "Vault")
	st := seedRegistration(t, store, vault)
	reg := prometheus.NewRegistry()
	ks := startKeySync(t, store, vault, reg)
	waitFor(t, "initial sync", 5*time.Second, func() bool { return ks.Ready() == nil })
	if len(store.saved) != 1 {
		t.Fatalf("an unchanged key was saved again (%d saves)", len(store.saved))
	}

	b, newKey := rotatedKeyFile(t, st, st.InstanceID)
	agentWrite(t, filepath.Join(vault, registration.RegistrationKeyFile), b)
	waitFor(t, "rotated key in the store", 5*time.Second, func() bool { return loadState(t, store).Key.PrivateKey == newKey.PrivateKey })
	got := loadState(t, store)
	if len(got.PreviousKeys) != 1 || got.PreviousKeys[0].PrivateKey != st.Key.PrivateKey {
		t.Fatal("previous key not kept")
	}
	if got.Key.PublicKey != newKey.PublicKey {
		t.Fatal("public key not derived from the private key (the agent left the old one)")
	}
	waitFor(t, "ready", 5*time.Second, func() bool { return ks.Ready() == nil })
	if v := value(ks.Metrics().Syncs); v != 1 {
		t.Errorf("syncs metric %v, want 1", v)
	}
	if !gathered(t, reg, "ekslink_registration_key_unsynced") {
		t.Error("unsynced gauge not registered on the given registry")
	}
}

func TestKeySyncRefusesAKeyOfAnotherInstance(t *testing.T) {
	store := statestore.NewMemory()
	vault := filepath.Join(t.TempDir(), "Vault")
	st := seedRegistration(t, store, vault)
	ks := startKeySync(t, store, vault, nil)
	waitFor(t, "initial sync", 5*time.Second, func() bool { return ks.Ready() == nil })
	b, _ := rotatedKeyFile(t, st, "mi-0ffffffffffffffff")
	agentWrite(t, filepath.Join(vault, registration.RegistrationKeyFile), b)
	waitFor(t, "unsynced", 5*time.Second, func() bool { return errors.Is(ks.Ready(), registration.ErrUnsynced) })
	if loadState(t, store).Key.PrivateKey != st.Key.PrivateKey {
		t.Fatal("a key of another instance was saved")
	}
}

func TestKeySyncWithPartialWritesAndTheAPIServerDown(t *testing.T) {
	env := envtest.Start(t, &envtest.Environment{})
	ns := env.Namespace(t)
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Timeout = -1, 2*time.Second
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := &recordingStore{Store: statestore.NewSecret(client, ns, "eks-connector-state-0", statestore.SecretOptions{})}
	vault := filepath.Join(t.TempDir(), "Vault")
	st := seedRegistration(t, store, vault)
	reg := prometheus.NewRegistry()
	ks := startKeySync(t, store, vault, reg)
	waitFor(t, "initial sync", 10*time.Second, func() bool { return ks.Ready() == nil })
	keyPath := filepath.Join(vault, registration.RegistrationKeyFile)
	b, newKey := rotatedKeyFile(t, st, st.InstanceID)

	// The agent truncates and writes part of the new key: never saved, readiness says unsynced.
	agentWrite(t, keyPath, b[:len(b)/2])
	waitFor(t, "unsynced after a partial write", 5*time.Second, func() bool { return errors.Is(ks.Ready(), registration.ErrUnsynced) })
	if value(ks.Metrics().Unsynced) != 1 {
		t.Error("unsynced gauge is not 1")
	}

	// The API server goes away; the agent finishes writing.
	env.StopAPIServer()
	agentWrite(t, keyPath, b)
	outage := time.Now()
	for time.Since(outage) < 1500*time.Millisecond {
		if ks.Ready() == nil {
			t.Fatal("ready while the rotated key cannot reach the store")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "sync after the API server is back", 30*time.Second, func() bool { return ks.Ready() == nil })

	got := loadState(t, store)
	if got.Key.PrivateKey != newKey.PrivateKey {
		t.Fatal("store does not hold the rotated key")
	}
	if len(got.PreviousKeys) != 1 || got.PreviousKeys[0].PrivateKey != st.Key.PrivateKey {
		t.Fatal("previous key not kept")
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	for i, raw := range store.saved {
		var s registration.State
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("save %d is not a state: %v", i, err)
		}
		if err := s.Key.Validate(); err != nil {
			t.Fatalf("save %d holds an invalid key (a partial file was saved?): %v", i, err)
		}
	}
	if value(ks.Metrics().Unsynced) != 0 || value(ks.Metrics().Failures) == 0 {
		t.Error("metrics do not reflect the unsynced window")
	}
}

func BenchmarkKeySyncCheck(b *testing.B) {
	store := statestore.NewMemory()
	vault := filepath.Join(b.TempDir(), "Vault")
	key, _ := registration.GenerateKey(time.Now())
	st := &registration.State{ActivationID: testActivationID, Region: "eu-west-1", Status: registration.StatusRegistered,
		InstanceID: "mi-0123456789abcdef0", Fingerprint: "f", Key: key}
	raw, _ := json.Marshal(st)
	_, _ = store.Save(context.Background(), map[string][]byte{registration.StateKey: raw}, "")
	_ = registration.WriteVault(context.Background(), vault, st, registration.VaultOptions{})
	ks, _ := registration.NewKeySync(store, vault, registration.KeySyncOptions{})
	ctx := context.Background()
	for b.Loop() {
		if err := ks.SyncOnce(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

func gathered(t *testing.T, g prometheus.Gatherer, name string) bool {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return true
		}
	}
	return false
}
