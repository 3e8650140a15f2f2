//go:build unix

package statestore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ekslink/ekslink/statestore"
)

// Another process holding the lock (a hung writer) must not hold a Save past its deadline.
func TestFileSaveHonoursTheDeadlineWhileAnotherProcessHoldsTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	// flock locks belong to the open file description, so this fd conflicts like another process.
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := statestore.NewFile(path).Save(ctx, map[string][]byte{"a": []byte("1")}, "")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Save while the lock is held: got %v, want the deadline", err)
		}
	case <-time.After(10 * time.Second):
		_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) // let the stuck Save finish
		t.Fatal("Save blocked on the lock far past its 100ms deadline")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("document written without the lock: %v", err)
	}
}
