package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

func unsetenv(t *testing.T, name string) {
	t.Helper()
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

func TestMainReportsTheErrorUnderTheBinarysName(t *testing.T) {
	var stderr bytes.Buffer
	root := &cobra.Command{Use: "tool", SilenceUsage: true, SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error { return errors.New("no region") }}
	root.SetErr(&stderr)
	root.SetArgs(nil)
	if code := Main(root); code != 1 || stderr.String() != "tool: no region\n" {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	ok := &cobra.Command{Use: "tool", RunE: func(*cobra.Command, []string) error { return nil }}
	ok.SetArgs(nil)
	if code := Main(ok); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// SIGTERM (what the kubelet sends) cancels the command's context instead of killing the process.
func TestMainCancelsTheContextOnSIGTERM(t *testing.T) {
	root := &cobra.Command{Use: "tool", SilenceUsage: true, SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
				return err
			}
			select {
			case <-cmd.Context().Done():
				return context.Cause(cmd.Context())
			case <-time.After(10 * time.Second):
				return errors.New("SIGTERM did not cancel the context")
			}
		}}
	var stderr bytes.Buffer
	root.SetErr(&stderr)
	root.SetArgs(nil)
	if code := Main(root); code != 1 || stderr.String() != "tool: terminated signal received\n" {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestNewLoggerLevelFollowsVerbosity(t *testing.T) {
	for _, tc := range []struct {
		verbosity int
		want      string
	}{
		{0, "info,error"},
		{1, "info,v1,error"},
		{-4, "error"},
	} {
		var buf bytes.Buffer
		log := NewLogger(&buf, tc.verbosity)
		log.Info("info")
		log.V(1).Info("v1")
		log.V(2).Info("v2")
		log.Error(errors.New("boom"), "error")
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var entry struct{ Msg string }
			if err := json.Unmarshal([]byte(line), &entry); err != nil {
				t.Fatalf("not a JSON line: %q", line)
			}
			got = append(got, entry.Msg)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("-v %d logged %v, want %s", tc.verbosity, got, tc.want)
		}
	}
}
