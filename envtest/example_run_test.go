package envtest_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/ekslink/ekslink/envtest"
)

// TestExampleEnvironment runs ExampleEnvironment and checks its output, skipping (or failing under
// CI) when the binaries are missing, which the example itself cannot do.
func TestExampleEnvironment(t *testing.T) {
	if _, err := envtest.FindBinaries(); err != nil {
		envtest.Start(t, nil) // skips, or fails under CI, with the lookup's message
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	func() {
		defer func() { os.Stdout = stdout; w.Close() }()
		ExampleEnvironment()
	}()
	if got := <-done; !bytes.Equal(got, []byte("example true\n")) {
		t.Fatalf("ExampleEnvironment printed %q, want %q", got, "example true\n")
	}
}
