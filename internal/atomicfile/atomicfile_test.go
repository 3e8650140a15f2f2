package atomicfile

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// versions are contents of different lengths, so a torn or truncated file is never one of them.
func versions() [][]byte {
	return [][]byte{
		bytes.Repeat([]byte("a"), 1<<20),
		bytes.Repeat([]byte("b"), 3<<19),
		bytes.Repeat([]byte("c"), 1<<18),
	}
}

func isVersion(b []byte) bool {
	for _, v := range versions() {
		if bytes.Equal(b, v) {
			return true
		}
	}
	return false
}

func TestAReaderNeverSeesAPartialFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	vs := versions()
	if err := Write(path, vs[0], 0o600); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := Write(path, vs[i%len(vs)], 0o600); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	deadline := time.Now().Add(time.Second)
	reads := 0
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %d: %v (the target must always exist)", reads, err)
		}
		if !isVersion(b) {
			t.Fatalf("read %d saw %d bytes that are no complete version", reads, len(b))
		}
		reads++
	}
	close(stop)
	wg.Wait()
	t.Logf("%d reads, all complete", reads)
}

// A writer killed at any moment (SIGKILL: no deferred cleanup runs) leaves the target complete:
// the old version or the new one.
func TestAWriterKilledMidwayLeavesACompleteFile(t *testing.T) {
	if dir := os.Getenv("ATOMICFILE_WRITER_DIR"); dir != "" {
		vs := versions()
		for i := 0; ; i++ {
			if err := Write(filepath.Join(dir, "state.json"), vs[i%len(vs)], 0o600); err != nil {
				os.Exit(2)
			}
		}
	}
	for round := range 5 {
		dir := t.TempDir()
		path := filepath.Join(dir, "state.json")
		if err := Write(path, versions()[2], 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestAWriterKilledMidwayLeavesACompleteFile$")
		cmd.Env = append(os.Environ(), "ATOMICFILE_WRITER_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+round*37) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 2 {
			t.Fatalf("round %d: the writer did not die by the signal: %v", round, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !isVersion(b) {
			t.Fatalf("round %d: after the kill the file holds %d bytes that are no complete version", round, len(b))
		}
	}
}

func TestWriteSetsTheModeAndLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kubeconfig")
	if err := Write(path, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("y"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the target", len(entries))
	}
}

func TestAFailedWriteKeepsTheOldFile(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores directory permissions; use a target that cannot be replaced instead.
		dir := t.TempDir()
		target := filepath.Join(dir, "state")
		if err := os.Mkdir(target, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(target, "keep"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Write(target, []byte("new"), 0o600); err == nil {
			t.Fatal("replacing a non-empty directory succeeded")
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("a failed write left %d entries, want only the old target", len(entries))
		}
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	if err := Write(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	if err := Write(path, []byte("new"), 0o600); err == nil {
		t.Fatal("write into a read-only directory succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("after a failed write the file holds %q, want the old content", b)
	}
}

func TestWriteNewNeverReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sa.key")
	if err := WriteNew(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteNew(path, []byte("second"), 0o600)
	if !errors.Is(err, ErrExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second WriteNew: %v, want ErrExist naming the path", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Errorf("file holds %q, want the first content", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the target", len(entries))
	}
}
