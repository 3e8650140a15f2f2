package node_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// With a piece missing (here the binaries: EKSLINK_TESTBIN_DIR names an empty directory), the node
// test fails under CI, saying what to run, and skips elsewhere, as envtest does. The
// test binary runs TestNodeRunsPods again as a child process with that environment.
func TestMissingPiecesFailUnderCIAndSkipElsewhere(t *testing.T) {
	if os.Getenv("EKSLINK_E2E_CHILD") != "" {
		t.Skip("child run")
	}
	empty := t.TempDir()
	run := func(ci string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNodeRunsPods$", "-test.v", "-test.count=1")
		env := []string{"EKSLINK_TESTBIN_DIR=" + empty, "EKSLINK_E2E_CHILD=1"}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, "EKSLINK_TESTBIN_DIR=") {
				env = append(env, kv)
			}
		}
		if ci != "" {
			env = append(env, "CI="+ci)
		}
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("true")
	if err == nil || !strings.Contains(out, "--- FAIL: TestNodeRunsPods") {
		t.Fatalf("with CI set and no binaries, the node test did not fail (err %v):\n%s", err, out)
	}
	for _, want := range []string{"make testbin", "make nodebin", "CI is set, so this is a failure"} {
		if !strings.Contains(out, want) {
			t.Errorf("the failure does not say %q:\n%s", want, out)
		}
	}
	out, err = run("")
	if err != nil || !strings.Contains(out, "--- SKIP: TestNodeRunsPods") || !strings.Contains(out, "make nodebin") {
		t.Fatalf("without CI and no binaries, the node test did not skip saying what to run (err %v):\n%s", err, out)
	}
}
