package ssmagent_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ekslink/ekslink/internal/ssmagent"
)

// TestUpdatePrivateKeyKeepsTheRestOfTheRecord checks the model against instance_info.go
// UpdatePrivateKey and fileutil/harden.go HardenedWriteFile: only the three key fields change, the
// bytes are json.Marshal of the agent's struct, the date has no monotonic-clock suffix, and the file
// is rewritten in place (same inode, truncated first, 0600).
func TestUpdatePrivateKeyKeepsTheRestOfTheRecord(t *testing.T) {
	v := &ssmagent.Vault{Dir: t.TempDir()}
	registered := time.Date(2026, 11, 23, 9, 30, 15, 0, time.UTC)
	if _, err := v.UpdateServerInfo("mi-0123456789abcdef0", "eu-west-1", "", "b2xk", ssmagent.KeyType, registered); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(v.Dir, "Store", ssmagent.RegVaultKey)
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	var midway []byte
	v.Midway = func(p string) error {
		if p == keyPath {
			midway, _ = os.ReadFile(p)
		}
		return nil
	}
	// time.Now() carries a monotonic reading; Format never prints it (String would: "m=+...").
	got, err := v.UpdatePrivateKey("bmV3", ssmagent.KeyType, time.Now().In(time.FixedZone("CET", 3600)))
	if err != nil {
		t.Fatal(err)
	}
	info, err := v.Load()
	if err != nil {
		t.Fatal(err)
	}
	if info.PrivateKey != "bmV3" || info.PublicKey != "" || info.InstanceID != "mi-0123456789abcdef0" || info.Region != "eu-west-1" {
		t.Fatalf("record after rotation: %+v", info)
	}
	if strings.Contains(info.PrivateKeyCreatedDate, "m=") || !strings.HasSuffix(info.PrivateKeyCreatedDate, " +0100 CET") {
		t.Fatalf("date %q", info.PrivateKeyCreatedDate)
	}
	if _, err := time.Parse(ssmagent.DateLayout, info.PrivateKeyCreatedDate); err != nil {
		t.Fatal(err)
	}
	wantPrefix := `{"instanceID":"mi-0123456789abcdef0","region":"eu-west-1","instanceType":"","availabilityZone":"","privateKey":"bmV3","publicKey":"","privateKeyType":"Rsa","privateKeyCreatedDate":"`
	if !strings.HasPrefix(string(got), wantPrefix) {
		t.Fatalf("record bytes %s", got)
	}
	if len(midway) == 0 || len(midway) >= len(got) || !bytes.HasPrefix(got, midway) {
		t.Fatalf("midway the file held %q, want a strict prefix of the new record", midway)
	}
	after, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if after.Sys().(*syscall.Stat_t).Ino != before.Sys().(*syscall.Stat_t).Ino {
		t.Error("the record was replaced, not rewritten in place")
	}
	if after.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 (hardened)", after.Mode().Perm())
	}
	m, err := os.ReadFile(filepath.Join(v.Dir, "Manifest"))
	if err != nil {
		t.Fatal(err)
	}
	if string(m) != `{"RegistrationKey":"/var/lib/amazon/ssm/Vault/Store/RegistrationKey"}` {
		t.Errorf("Manifest %s", m)
	}
}

func TestLoadWithoutManifestIsUnregistered(t *testing.T) {
	info, err := (&ssmagent.Vault{Dir: t.TempDir()}).Load()
	if err != nil || info != (ssmagent.InstanceInfo{}) {
		t.Fatalf("%+v, %v", info, err)
	}
}
