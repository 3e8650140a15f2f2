package registration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ekslink/ekslink/internal/ssmagent"
	"github.com/ekslink/ekslink/registration"
	"github.com/ekslink/ekslink/statestore"
)

// agentCase is a vault as the real SSM agent leaves it after rotating its key. The fixtures under
// testdata/agent are written by internal/ssmagent, which reproduces amazon-ssm-agent's
// agent/managedInstances/registration/instance_info.go (UpdatePrivateKey replaces privateKey,
// privateKeyType and privateKeyCreatedDate only, json.Marshal of instanceInfo, the date formatted
// with "2006-01-02 15:04:05.999999999 -0700 MST" via time.Format, so no "m=+..." suffix) and
// agent/managedInstances/vault/fsvault/fsvault.go + agent/fileutil/harden.go (in-place truncate and
// write of Store/RegistrationKey, then of the Manifest).
type agentCase struct {
	// name is the fixture directory under testdata/agent.
	name string
	// agentRegistered: the agent registered itself (agent/agent_parser.go registerManagedInstance
	// writes publicKey ""), so publicKey stays "" after rotation. Otherwise ekslink's init wrote the
	// vault (testdata/vault) and publicKey keeps the OLD key's public key after rotation.
	agentRegistered bool
	// rotatedAt is the rotation time used when the fixture is generated (-update): in UTC as in the
	// agent's container, trailing zeros of the fraction dropped by the layout; and in another zone.
	rotatedAt time.Time
}

var agentCases = []agentCase{
	{name: "rotated-stale-publickey", rotatedAt: time.Date(2026, 11, 30, 9, 30, 15, 120000000, time.UTC)},
	{name: "rotated-empty-publickey", agentRegistered: true, rotatedAt: time.Date(2026, 11, 30, 10, 30, 15, 0, time.FixedZone("CET", 3600))},
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// beforeRotation returns a fresh vault as it is before the agent rotates the golden state's key.
func (c agentCase) beforeRotation(t *testing.T) *ssmagent.Vault {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Vault")
	copyDir(t, filepath.Join("testdata", "vault"), dir)
	v := &ssmagent.Vault{Dir: dir}
	if c.agentRegistered {
		st := goldenState(t)
		created, err := time.Parse(ssmagent.DateLayout, st.Key.CreatedDate)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.UpdateServerInfo(st.InstanceID, st.Region, "", st.Key.PrivateKey, ssmagent.KeyType, created); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// fixture returns the rotated record of the case (generating the fixture with -update when it is
// missing).
func (c agentCase) fixture(t *testing.T) (ssmagent.InstanceInfo, []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "agent", c.name)
	path := filepath.Join(dir, filepath.FromSlash(registration.RegistrationKeyFile))
	if _, err := os.Stat(path); os.IsNotExist(err) && *update {
		key, err := registration.GenerateKey(c.rotatedAt)
		if err != nil {
			t.Fatal(err)
		}
		v := c.beforeRotation(t)
		if _, err := v.UpdatePrivateKey(key.PrivateKey, ssmagent.KeyType, c.rotatedAt); err != nil {
			t.Fatal(err)
		}
		copyDir(t, v.Dir, dir)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var info ssmagent.InstanceInfo
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	return info, b
}

// rotate performs the agent's rotation to the fixture's key on v and returns the bytes written.
func rotate(t *testing.T, v *ssmagent.Vault, fx ssmagent.InstanceInfo) []byte {
	t.Helper()
	at, err := time.Parse(ssmagent.DateLayout, fx.PrivateKeyCreatedDate)
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.UpdatePrivateKey(fx.PrivateKey, fx.PrivateKeyType, at)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func derivedPublicKey(t *testing.T, privateKey string) string {
	t.Helper()
	k, err := registration.Key{PrivateKey: privateKey}.WithPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey
}

// TestAgentFixturesAreTheAgentsBytes pins the fixtures to the agent model: rotating the golden vault
// the agent's way reproduces them byte for byte (record, Manifest, fingerprint), and they hold what
// the agent leaves after a rotation: a stale or an empty publicKey.
func TestAgentFixturesAreTheAgentsBytes(t *testing.T) {
	golden := goldenState(t)
	for _, c := range agentCases {
		t.Run(c.name, func(t *testing.T) {
			fx, _ := c.fixture(t)
			v := c.beforeRotation(t)
			rotate(t, v, fx)
			got, want := readTree(t, v.Dir), readTree(t, filepath.Join("testdata", "agent", c.name))
			for name := range want {
				if !bytes.Equal(got[name], want[name]) {
					t.Errorf("%s is not what the agent writes:\n got %s\nwant %s", name, got[name], want[name])
				}
			}
			wantPublic := golden.Key.PublicKey
			if c.agentRegistered {
				wantPublic = ""
			}
			if fx.PublicKey != wantPublic || fx.PrivateKey == golden.Key.PrivateKey || fx.InstanceID != golden.InstanceID {
				t.Fatalf("fixture is not a rotation of the golden registration keeping publicKey %q: %+v", wantPublic, fx)
			}
		})
	}
}

// TestAgentRotatedVaultIsReadWithItsPrivateKey: the private key is the truth. A vault whose
// publicKey is stale or empty (the agent's normal state after a rotation) reads into a state with
// the public key derived from the private key and the agent's date kept verbatim; writing the vault
// back from that state (the restart path) gives the agent the rotated private key.
func TestAgentRotatedVaultIsReadWithItsPrivateKey(t *testing.T) {
	for _, c := range agentCases {
		t.Run(c.name, func(t *testing.T) {
			fx, fxBytes := c.fixture(t)
			v, err := registration.ReadVault(filepath.Join("testdata", "agent", c.name))
			if err != nil {
				t.Fatal(err)
			}
			// ekslink's RegistrationKey has the agent's fields in the agent's order.
			if b, _ := json.Marshal(v.RegistrationKey); !bytes.Equal(b, fxBytes) {
				t.Fatalf("RegistrationKey marshals differently from the agent's instanceInfo:\n got %s\nwant %s", b, fxBytes)
			}
			st, err := v.State(testActivationID)
			if err != nil {
				t.Fatalf("the agent's rotated vault is refused: %v", err)
			}
			if st.Key.PrivateKey != fx.PrivateKey || st.Key.CreatedDate != fx.PrivateKeyCreatedDate || st.Key.Type != "Rsa" {
				t.Fatalf("state key %+v does not carry the rotated key and its date", st.Key)
			}
			if st.Key.PublicKey != derivedPublicKey(t, fx.PrivateKey) {
				t.Fatal("state public key is not derived from the private key")
			}
			restoreAndLoad(t, st, fx)
		})
	}
}

// restoreAndLoad writes the vault from st (what init does when the emptyDir is gone) and reads it
// the way the agent does: it must find the rotated private key, its date, and a publicKey that
// belongs to it.
func restoreAndLoad(t *testing.T, st *registration.State, fx ssmagent.InstanceInfo) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Vault")
	if err := registration.WriteVault(context.Background(), dir, st, registration.VaultOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := (&ssmagent.Vault{Dir: dir}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if info.PrivateKey != fx.PrivateKey || info.PrivateKeyType != ssmagent.KeyType || info.InstanceID != fx.InstanceID || info.Region != fx.Region {
		t.Fatalf("restored vault gives the agent %+v, want the rotated key of %s", info, fx.InstanceID)
	}
	if info.PrivateKeyCreatedDate != fx.PrivateKeyCreatedDate {
		t.Fatalf("restored date %q, the agent wrote %q (key age must survive the restart)", info.PrivateKeyCreatedDate, fx.PrivateKeyCreatedDate)
	}
	if _, err := time.Parse(ssmagent.DateLayout, info.PrivateKeyCreatedDate); err != nil {
		t.Fatalf("the agent cannot parse the restored date (ShouldRotatePrivateKey would fail): %v", err)
	}
	if info.PublicKey != derivedPublicKey(t, fx.PrivateKey) {
		t.Fatal("restored publicKey does not belong to the restored private key")
	}
}

// TestKeySyncSavesTheAgentsRotation rotates the key in place the agent's way under a running
// KeySync: while the record is half written the store keeps the old key and readiness reports the
// unsynced window; once complete, the rotated key (stale or empty publicKey) reaches the store and a
// vault restored from the store gives the agent that key.
func TestKeySyncSavesTheAgentsRotation(t *testing.T) {
	for _, c := range agentCases {
		t.Run(c.name, func(t *testing.T) {
			fx, fxBytes := c.fixture(t)
			golden := goldenState(t)
			raw, _ := json.Marshal(golden)
			store := &recordingStore{Store: statestore.NewMemory()}
			if _, err := store.Save(context.Background(), map[string][]byte{registration.StateKey: raw}, ""); err != nil {
				t.Fatal(err)
			}
			v := c.beforeRotation(t)
			ks := startKeySync(t, store, v.Dir, nil)
			waitFor(t, "initial sync", 5*time.Second, func() bool { return ks.Ready() == nil })

			keyPath := filepath.Join(v.Dir, filepath.FromSlash(registration.RegistrationKeyFile))
			midway := false
			v.Midway = func(p string) error {
				if p != keyPath {
					return nil
				}
				midway = true
				waitFor(t, "unsynced while the record is half written", 5*time.Second, func() bool { return ks.Ready() != nil })
				if loadState(t, store).Key.PrivateKey != golden.Key.PrivateKey {
					t.Fatal("the store changed while the vault held half a record")
				}
				return nil
			}
			if got := rotate(t, v, fx); !bytes.Equal(got, fxBytes) || !midway {
				t.Fatalf("the rotation did not write the fixture in place (midway seen: %v)", midway)
			}
			waitFor(t, "the rotated key in the store", 5*time.Second, func() bool {
				return loadState(t, store).Key.PrivateKey == fx.PrivateKey && ks.Ready() == nil
			})
			st := loadState(t, store)
			if len(st.PreviousKeys) != 1 || st.PreviousKeys[0].PrivateKey != golden.Key.PrivateKey {
				t.Fatal("the previous key is not kept")
			}
			if st.Key.CreatedDate != fx.PrivateKeyCreatedDate || st.Key.PublicKey != derivedPublicKey(t, fx.PrivateKey) {
				t.Fatalf("saved key %+v: want the agent's date verbatim and the public key derived", st.Key)
			}
			restoreAndLoad(t, st, fx)
		})
	}
}

// TestKeySyncRefusesUnusableAgentRecords: what the agent's in-place rewrite can leave (an empty or
// half-written file), or a record whose private key does not parse, is never saved; the store keeps
// the old key and readiness reports the window. The complete record is then saved.
func TestKeySyncRefusesUnusableAgentRecords(t *testing.T) {
	c := agentCases[0]
	fx, fxBytes := c.fixture(t)
	golden := goldenState(t)
	badKey := fx
	badKey.PrivateKey = fx.PrivateKey[:100]
	badKeyBytes, _ := json.Marshal(badKey)
	notBase64 := fx
	notBase64.PrivateKey = "not base64!"
	notBase64Bytes, _ := json.Marshal(notBase64)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty file (truncated, nothing written yet)", nil},
		{"half of the record", fxBytes[:len(fxBytes)/2]},
		{"all but the closing brace", fxBytes[:len(fxBytes)-1]},
		{"not JSON", []byte("\x00\x00\x00\x00")},
		{"private key cut short", badKeyBytes},
		{"private key not base64", notBase64Bytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(golden)
			store := &recordingStore{Store: statestore.NewMemory()}
			if _, err := store.Save(context.Background(), map[string][]byte{registration.StateKey: raw}, ""); err != nil {
				t.Fatal(err)
			}
			v := c.beforeRotation(t)
			ks, err := registration.NewKeySync(store, v.Dir, registration.KeySyncOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := ks.SyncOnce(ctx); err != nil {
				t.Fatal(err)
			}
			if err := v.Store(ssmagent.RegVaultKey, tc.data); err != nil {
				t.Fatal(err)
			}
			if err := ks.SyncOnce(ctx); err == nil {
				t.Fatal("an unusable record was accepted")
			}
			if ks.Ready() == nil || value(ks.Metrics().Unsynced) != 1 || value(ks.Metrics().Failures) != 1 {
				t.Fatal("readiness and metrics do not report the unsynced window")
			}
			if loadState(t, store).Key.PrivateKey != golden.Key.PrivateKey || len(store.saved) != 1 {
				t.Fatal("the store changed")
			}
			if err := v.Store(ssmagent.RegVaultKey, fxBytes); err != nil {
				t.Fatal(err)
			}
			if err := ks.SyncOnce(ctx); err != nil {
				t.Fatalf("the complete agent record is refused: %v", err)
			}
			if loadState(t, store).Key.PrivateKey != fx.PrivateKey || ks.Ready() != nil {
				t.Fatal("the complete record was not saved")
			}
		})
	}
}
