package statestore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ekslink/ekslink/statestore"
	"github.com/ekslink/ekslink/statestore/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) statestore.Store { return statestore.NewMemory() }, storetest.Options{})
}

func TestFileConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) statestore.Store {
		return statestore.NewFile(filepath.Join(t.TempDir(), "state.json"))
	}, storetest.Options{})
}

func TestSealedConformance(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := statestore.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, func(*testing.T) statestore.Store {
		return statestore.Sealed(statestore.NewMemory(), sealer)
	}, storetest.Options{})
}

func TestFileIsPrivateAndLeavesNoTemporaries(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := statestore.NewFile(path)
	ctx := context.Background()
	v, err := s.Save(ctx, map[string][]byte{"k": []byte("v")}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, map[string][]byte{"k": []byte("v2")}, v); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
}

func TestFileRejectsACorruptDocument(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, []byte(`{"version":1,"data":`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := statestore.NewFile(path)
	if _, err := s.Load(context.Background()); err == nil || errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("corrupt file: got %v, want a parse error", err)
	}
	if _, err := s.Save(context.Background(), map[string][]byte{"a": nil}, ""); err == nil {
		t.Fatal("Save over a corrupt file succeeded; it must not silently replace it")
	}
}

func TestTwoFileStoresOnOnePathShareTheVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	a, b := statestore.NewFile(path), statestore.NewFile(path)
	ctx := context.Background()
	v, err := a.Save(ctx, map[string][]byte{"x": []byte("a")}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Save(ctx, map[string][]byte{"x": []byte("b")}, v); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Save(ctx, map[string][]byte{"x": []byte("a2")}, v); !errors.Is(err, statestore.ErrConflict) {
		t.Fatalf("stale save through a second handle: got %v, want ErrConflict", err)
	}
}

func TestSealedValuesAreNotStoredInTheClear(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	sealer, err := statestore.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	inner := statestore.NewMemory()
	s := statestore.Sealed(inner, sealer, "private-key")
	ctx := context.Background()
	secret := []byte("-----BEGIN RSA PRIVATE KEY-----")
	if _, err := s.Save(ctx, map[string][]byte{"private-key": secret, "instance-id": []byte("mi-1")}, ""); err != nil {
		t.Fatal(err)
	}
	raw, _ := inner.Load(ctx)
	if bytes.Contains(raw.Data["private-key"], secret) {
		t.Fatal("sealed key stored in the clear")
	}
	if string(raw.Data["instance-id"]) != "mi-1" {
		t.Fatal("unsealed key was changed")
	}
	doc, err := s.Load(ctx)
	if err != nil || !bytes.Equal(doc.Data["private-key"], secret) {
		t.Fatalf("Load = %q, %v", doc.Data["private-key"], err)
	}

	// Swapping ciphertexts between keys or using another key must fail to open.
	other, _ := statestore.NewAESGCM(bytes.Repeat([]byte{8}, 32))
	if _, err := statestore.Sealed(inner, other, "private-key").Load(ctx); !errors.Is(err, statestore.ErrSealed) {
		t.Fatalf("wrong key: got %v, want ErrSealed", err)
	}
	swapped := statestore.NewMemory()
	if _, err := swapped.Save(ctx, map[string][]byte{"other": raw.Data["private-key"]}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := statestore.Sealed(swapped, sealer).Load(ctx); !errors.Is(err, statestore.ErrSealed) {
		t.Fatalf("value moved to another key: got %v, want ErrSealed", err)
	}
	if _, err := statestore.NewAESGCM([]byte("short")); err == nil {
		t.Fatal("short AES key accepted")
	}
}

func TestOrdinalName(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, pod, want string
	}{
		{"statefulset ordinal zero", "eks-connector-state", "eks-connector-0", "eks-connector-state-0"},
		{"multi-digit ordinal", "p", "set-with-dashes-12", "p-12"},
		{"deployment pod name is refused", "p", "eks-connector-7d9f8b6c5-x2x4z", ""},
		{"no ordinal is refused", "p", "eks-connector", ""},
		{"trailing dash is refused", "p", "eks-connector-", ""},
		{"leading zero is refused", "p", "eks-connector-01", ""},
		{"sign is refused", "p", "eks-connector-+1", ""},
		{"empty pod name is refused", "p", "", ""},
		{"empty prefix is refused", "", "eks-connector-0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := statestore.OrdinalName(tc.prefix, tc.pod)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("OrdinalName(%q, %q) = %q, want an error", tc.prefix, tc.pod, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("OrdinalName(%q, %q) = %q, %v; want %q", tc.prefix, tc.pod, got, err, tc.want)
			}
		})
	}
}

func TestUpdateStopsOnErrNoChange(t *testing.T) {
	s := statestore.NewMemory()
	ctx := context.Background()
	v, _ := s.Save(ctx, map[string][]byte{"a": []byte("1")}, "")
	doc, err := statestore.Update(ctx, s, func(*statestore.Document) error { return statestore.ErrNoChange }, nil)
	if err != nil || doc.Version != v {
		t.Fatalf("Update = %+v, %v", doc, err)
	}
}

func TestConflictErrorIsDescriptive(t *testing.T) {
	err := error(&statestore.ConflictError{Store: "memory", Expected: "3", Actual: "4"})
	b, _ := json.Marshal(err.Error())
	if !strings.Contains(string(b), "version 3") || !strings.Contains(err.Error(), "retry") {
		t.Fatalf("message %s", b)
	}
}

func BenchmarkMemorySave(b *testing.B) { benchmarkSave(b, statestore.NewMemory()) }

func BenchmarkFileSave(b *testing.B) {
	benchmarkSave(b, statestore.NewFile(filepath.Join(b.TempDir(), "state.json")))
}

// benchmarkSave saves a 4 KiB document over and over, each save on the version of the last.
func benchmarkSave(b *testing.B, s statestore.Store) {
	ctx := context.Background()
	data := map[string][]byte{"registration.json": bytes.Repeat([]byte("x"), 4096)}
	v := ""
	for b.Loop() {
		var err error
		if v, err = s.Save(ctx, data, v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAESGCMSealOpen(b *testing.B) {
	s, _ := statestore.NewAESGCM(bytes.Repeat([]byte{1}, 32))
	ctx := context.Background()
	v := bytes.Repeat([]byte("k"), 1700)
	for b.Loop() {
		c, _ := s.Seal(ctx, "private-key", v)
		if _, err := s.Open(ctx, "private-key", c); err != nil {
			b.Fatal(err)
		}
	}
}
