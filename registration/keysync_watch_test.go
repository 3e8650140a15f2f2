package registration

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ekslink/ekslink/internal/ssmagent"
	"github.com/ekslink/ekslink/statestore"
)

// Without a file watcher (inotify limits are per user and often exhausted on busy nodes) the sync
// must keep going on the periodic check instead of stopping: a rotated key it never saves locks the
// cluster out.
func TestKeySyncWithoutAFileWatcherKeepsSyncing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	store := statestore.NewMemory()
	key, err := GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st := &State{ActivationID: actA, Region: "eu-west-1", Status: StatusRegistered, InstanceID: "mi-0123456789abcdef0",
		Fingerprint: "3f1c9a7e-4b2d-4e8f-9a6b-1c2d3e4f5a6b", Key: key}
	if _, err := saveState(ctx, store, st, ""); err != nil {
		t.Fatal(err)
	}
	vault := filepath.Join(t.TempDir(), "Vault")
	if err := WriteVault(ctx, vault, st, VaultOptions{}); err != nil {
		t.Fatal(err)
	}
	ks, err := NewKeySync(store, vault, KeySyncOptions{Interval: 50 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, CheckTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ks.newWatcher = func() (*fsnotify.Watcher, error) { return nil, errors.New("too many open files") }
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ks.Run(runCtx) }()
	stopped := false
	defer func() {
		stop()
		if !stopped {
			<-done
		}
	}()

	rotated, err := GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The agent's rotation (internal/ssmagent): publicKey keeps the old key's.
	if _, err := (&ssmagent.Vault{Dir: vault}).UpdatePrivateKey(rotated.PrivateKey, ssmagent.KeyType, time.Now()); err != nil {
		t.Fatal(err)
	}
	for {
		cur, _, err := LoadState(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Key.PrivateKey == rotated.PrivateKey && ks.Ready() == nil {
			return
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("Run stopped before its context ended (%v); the rotated key was never saved", err)
		case <-ctx.Done():
			t.Fatal("rotated key not saved without a file watcher")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
