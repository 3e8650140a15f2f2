package registration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ekslink/ekslink/registration"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenState is a fixed registered state (testdata/state.json, generated once with -update).
func goldenState(t *testing.T) *registration.State {
	t.Helper()
	path := filepath.Join("testdata", "state.json")
	if *update {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			key, err := registration.GenerateKey(time.Date(2026, 11, 23, 9, 30, 15, 123456789, time.FixedZone("UTC", 0)))
			if err != nil {
				t.Fatal(err)
			}
			st := registration.State{ActivationID: "11111111-2222-4333-8444-555555555555", Region: "eu-west-1", Status: registration.StatusRegistered,
				InstanceID: "mi-0123456789abcdef0", Fingerprint: "3f1c9a7e-4b2d-4e8f-9a6b-1c2d3e4f5a6b", Key: key}
			b, _ := json.MarshalIndent(st, "", "  ")
			if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st registration.State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range []string{registration.ManifestFile, registration.RegistrationKeyFile, registration.InstanceFingerprintFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

func TestVaultGoldenFiles(t *testing.T) {
	st := goldenState(t)
	dir := t.TempDir()
	// Written under another root, the manifest still names the paths the agent sees.
	if err := registration.WriteVault(context.Background(), dir, st, registration.VaultOptions{}); err != nil {
		t.Fatal(err)
	}
	got := readTree(t, dir)
	golden := filepath.Join("testdata", "vault")
	for name, b := range got {
		gp := filepath.Join(golden, name)
		if *update {
			_ = os.MkdirAll(filepath.Dir(gp), 0o755)
			if err := os.WriteFile(gp, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(gp)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s differs from golden:\n got %s\nwant %s", name, b, want)
		}
		fi, _ := os.Stat(filepath.Join(dir, name))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if want := `{"InstanceFingerprint":"/var/lib/amazon/ssm/Vault/Store/InstanceFingerprint","RegistrationKey":"/var/lib/amazon/ssm/Vault/Store/RegistrationKey"}`; string(got[registration.ManifestFile]) != want {
		t.Errorf("Manifest %s", got[registration.ManifestFile])
	}
	if want := `{"fingerprint":"3f1c9a7e-4b2d-4e8f-9a6b-1c2d3e4f5a6b","hardwareHash":{},"similarityThreshold":-1}`; string(got[registration.InstanceFingerprintFile]) != want {
		t.Errorf("InstanceFingerprint %s", got[registration.InstanceFingerprintFile])
	}
	var rk map[string]any
	if err := json.Unmarshal(got[registration.RegistrationKeyFile], &rk); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"instanceID", "region", "instanceType", "availabilityZone", "privateKey", "publicKey", "privateKeyType", "privateKeyCreatedDate"} {
		if _, ok := rk[k]; !ok {
			t.Errorf("RegistrationKey lacks %q", k)
		}
	}
	if d := rk["privateKeyCreatedDate"]; d != "2026-11-23 09:30:15.123456789 +0000 UTC" {
		t.Errorf("privateKeyCreatedDate %q is not in the agent's layout", d)
	}
}

func TestVaultRoundTripIsIdentical(t *testing.T) {
	golden := filepath.Join("testdata", "vault")
	v, err := registration.ReadVault(golden)
	if err != nil {
		t.Fatal(err)
	}
	st, err := v.State("11111111-2222-4333-8444-555555555555")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := registration.WriteVault(context.Background(), dir, st, registration.VaultOptions{}); err != nil {
		t.Fatal(err)
	}
	got, want := readTree(t, dir), readTree(t, golden)
	for name := range want {
		if !bytes.Equal(got[name], want[name]) {
			t.Errorf("%s changed in the round trip vault -> state -> vault:\n got %s\nwant %s", name, got[name], want[name])
		}
	}
}

func TestAgentVaultDirOption(t *testing.T) {
	dir := t.TempDir()
	if err := registration.WriteVault(context.Background(), dir, goldenState(t), registration.VaultOptions{AgentVaultDir: "/custom/Vault"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, registration.ManifestFile))
	if !strings.Contains(string(b), `"RegistrationKey":"/custom/Vault/Store/RegistrationKey"`) {
		t.Fatalf("Manifest %s", b)
	}
}

func TestWriteVaultValidatesBeforeWriting(t *testing.T) {
	base := goldenState(t)
	for _, tc := range []struct {
		name   string
		mutate func(*registration.State)
	}{
		{"pending state is refused", func(s *registration.State) { s.Status = registration.StatusPending }},
		{"missing instance id is refused", func(s *registration.State) { s.InstanceID = "" }},
		{"unparsable private key is refused", func(s *registration.State) { s.Key.PrivateKey = "bm90IGEga2V5" }},
		{"truncated private key is refused", func(s *registration.State) { s.Key.PrivateKey = s.Key.PrivateKey[:100] }},
		{"foreign public key is refused", func(s *registration.State) {
			other, _ := registration.GenerateKey(time.Now())
			s.Key.PublicKey = other.PublicKey
		}},
		{"RFC 3339 date is refused", func(s *registration.State) { s.Key.CreatedDate = "2026-11-23T09:30:15Z" }},
		{"empty fingerprint is refused", func(s *registration.State) { s.Fingerprint = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := *base
			tc.mutate(&st)
			dir := t.TempDir()
			if err := registration.WriteVault(context.Background(), dir, &st, registration.VaultOptions{}); !errors.Is(err, registration.ErrInvalidVault) {
				t.Fatalf("got %v, want ErrInvalidVault", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("invalid vault partly written: %v", entries)
			}
		})
	}
}

func TestReadRegistrationKeyRejectsPartialFiles(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("testdata", "vault", registration.RegistrationKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "Store"), 0o700)
	for _, n := range []int{0, 1, len(golden) / 2, len(golden) - 1} {
		if err := os.WriteFile(filepath.Join(dir, registration.RegistrationKeyFile), golden[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := registration.ReadRegistrationKey(dir); !errors.Is(err, registration.ErrInvalidVault) {
			t.Errorf("%d of %d bytes: got %v, want ErrInvalidVault", n, len(golden), err)
		}
	}
}

func TestGeneratedKeyMaterial(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	k, err := registration.GenerateKey(now)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	if k.CreatedDate != "2026-01-02 03:04:05 +0000 UTC" || k.Type != "Rsa" || len(k.PublicKey) != 392 {
		t.Errorf("key %+v", registration.Key{Type: k.Type, CreatedDate: k.CreatedDate})
	}
	pk, _ := k.RSA()
	if pk.N.BitLen() != 2048 {
		t.Errorf("%d bits", pk.N.BitLen())
	}
	fp, _ := registration.NewFingerprint()
	if !uuidV4.MatchString(fp) {
		t.Errorf("fingerprint %q", fp)
	}
}

func BenchmarkWriteVault(b *testing.B) {
	key, _ := registration.GenerateKey(time.Now())
	st := &registration.State{ActivationID: testActivationID, Region: "eu-west-1", Status: registration.StatusRegistered,
		InstanceID: "mi-0123456789abcdef0", Fingerprint: "3f1c9a7e-4b2d-4e8f-9a6b-1c2d3e4f5a6b", Key: key}
	dir := b.TempDir()
	ctx := context.Background()
	for b.Loop() {
		if err := registration.WriteVault(ctx, dir, st, registration.VaultOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerateKey(b *testing.B) {
	for b.Loop() {
		if _, err := registration.GenerateKey(time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// EKS Connector registrations have instance ids "eks_c:<cluster>_<suffix>": the vault accepts them
// and the round trip keeps them.
func TestVaultAcceptsEKSConnectorInstanceIDs(t *testing.T) {
	st := *goldenState(t)
	st.InstanceID = "eks_c:my-cluster_0123456789abcdefA"
	dir := t.TempDir()
	if err := registration.WriteVault(context.Background(), dir, &st, registration.VaultOptions{}); err != nil {
		t.Fatal(err)
	}
	v, err := registration.ReadVault(dir)
	if err != nil {
		t.Fatal(err)
	}
	back, err := v.State(st.ActivationID)
	if err != nil || back.InstanceID != st.InstanceID {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	for _, bad := range []string{"", "i-0123", "mi-", "eks_c:", "eks_c:cluster", "eks_c:_x", "mi-01/../x"} {
		if registration.ValidInstanceID(bad) {
			t.Errorf("ValidInstanceID(%q) = true", bad)
		}
	}
}
