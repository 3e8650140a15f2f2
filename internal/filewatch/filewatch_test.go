package filewatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// start follows files with a period long enough that only events can explain a prompt reason, and
// waits until the directories are watched.
func start(t *testing.T, o Options) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if o.Interval == 0 {
		o.Interval = time.Hour
	}
	watching := make(chan struct{})
	o.Watching = func() { close(watching) }
	ch := Start(ctx, o)
	<-watching
	return ch
}

func want(t *testing.T, ch <-chan string, reason string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != reason {
			t.Fatalf("reason %q, want %q", got, reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no %q within 10s", reason)
	}
}

func none(t *testing.T, ch <-chan string, within time.Duration) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("unexpected reason %q", got)
	case <-time.After(within):
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAnAtomicReplaceIsSeen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	write(t, file, "a")
	ch := start(t, Options{Files: []string{file}})
	tmp := filepath.Join(dir, ".token.tmp")
	write(t, tmp, "b")
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	want(t, ch, ReasonChanged)
}

// kubelet publishes a new version of a ConfigMap or projected volume by writing a timestamped
// directory and renaming a "..data_tmp" symlink over "..data" (pkg/volume/util/atomic_writer.go);
// the visible files are symlinks through "..data" and see no event of their own.
func TestTheKubeletDataSymlinkSwapIsSeen(t *testing.T) {
	dir := t.TempDir()
	// publish writes a version directory holding the token and points "..data" at it through a
	// rename of "..data_tmp", as the atomic writer does.
	publish := func(version, token string) string {
		t.Helper()
		v := filepath.Join(dir, version)
		if err := os.Mkdir(v, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(v, "token"), token)
		if err := os.Symlink(version, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		return v
	}
	v1 := publish("..2026_12_07_05_00_00.000000001", "one")
	file := filepath.Join(dir, "token")
	if err := os.Symlink(filepath.Join("..data", "token"), file); err != nil {
		t.Fatal(err)
	}
	ch := start(t, Options{Files: []string{file}, Debounce: 10 * time.Millisecond})

	publish("..2026_12_07_05_01_00.000000002", "two")
	if err := os.RemoveAll(v1); err != nil {
		t.Fatal(err)
	}
	want(t, ch, ReasonChanged)
	if b, err := os.ReadFile(file); err != nil || string(b) != "two" {
		t.Fatalf("after the swap the file reads %q, %v", b, err)
	}
}

func TestEventsOfOtherFilesAreIgnored(t *testing.T) {
	dir := t.TempDir()
	ch := start(t, Options{Files: []string{filepath.Join(dir, "token")}})
	write(t, filepath.Join(dir, "unrelated"), "x")
	none(t, ch, 200*time.Millisecond)
}

func TestBurstsOfWritesGiveOneReasonAfterTheDebounce(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "credentials")
	ch := start(t, Options{Files: []string{file}, Debounce: 150 * time.Millisecond})
	for i := range 5 {
		write(t, file, string(rune('a'+i)))
		time.Sleep(20 * time.Millisecond)
	}
	want(t, ch, ReasonChanged)
	none(t, ch, 300*time.Millisecond)
}

func TestWithoutAWatcherThePeriodicReasonContinues(t *testing.T) {
	dir := t.TempDir()
	ch := start(t, Options{Files: []string{filepath.Join(dir, "f")}, Interval: 20 * time.Millisecond,
		NewWatcher: func() (*fsnotify.Watcher, error) { return nil, errors.New("too many open files") }})
	for range 3 {
		want(t, ch, ReasonPeriodic)
	}
}

// The SSM agent creates the vault's Store directory only when it first writes a key.
func TestADirectoryCreatedLaterIsWatchedFromTheNextPeriod(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Store")
	file := filepath.Join(dir, "RegistrationKey")
	ch := start(t, Options{Files: []string{file}, Interval: 50 * time.Millisecond})
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	want(t, ch, ReasonPeriodic) // the period that adds the directory
	deadline := time.Now().Add(10 * time.Second)
	for {
		write(t, file, time.Now().String())
		select {
		case r := <-ch:
			if r == ReasonChanged {
				return
			}
		case <-time.After(time.Until(deadline)):
			t.Fatal("no file event from a directory created after Start")
		}
	}
}

func TestTheChannelClosesWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := Start(ctx, Options{Files: []string{filepath.Join(t.TempDir(), "f")}, Interval: time.Hour})
	cancel()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("channel still open after the context ended")
		}
	}
}
