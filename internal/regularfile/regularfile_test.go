package regularfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A named pipe without a writer used to block open(2) forever. Read must refuse it at once,
// also when the pipe is opened after a regular file's Stat (checked again after the open).
func TestReadRefusesFIFOsDevicesAndDirectories(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, "/dev/zero", dir} {
		done := make(chan error, 1)
		go func() {
			_, err := Read(p, 1<<20)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) {
				t.Errorf("%s: err = %v, want ErrNotRegular", p, err)
			}
		case <-time.After(5 * time.Second):
			// Unblock the stuck open so the test binary can exit.
			if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			t.Fatalf("%s: Read still blocked after 5s", p)
		}
	}
}

func TestReadLimitsAndFollowsLinks(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(f, link); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(link, 5); err != nil || string(b) != "12345" {
		t.Fatalf("%q %v", b, err)
	}
	var tl *TooLargeError
	if _, err := Read(f, 4); !errors.As(err, &tl) || tl.Limit != 4 {
		t.Fatalf("err = %v", err)
	}
	if _, err := Read(filepath.Join(dir, "missing"), 4); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}
