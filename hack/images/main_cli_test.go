package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// The command line refuses what it cannot do before building anything.
func TestCommandLineErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command"},
		{[]string{"deploy"}, `unknown command "deploy"`},
		{[]string{"build", "extra"}, "unexpected arguments"},
		{[]string{"build", "-load-platform", "windows/amd64"}, "-load-platform"},
		{[]string{"build", "-root", t.TempDir()}, "-root"},
		{[]string{"build", "-root", "../..", "-version", "v1+meta"}, "cannot be an image tag"},
		{[]string{"push"}, "REGISTRY="},
		{[]string{"push", "-registry", "Not A Registry", "-in", t.TempDir()}, "make images"},
	} {
		err := run(context.Background(), tc.args, io.Discard, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, err := parsePlatform("linux/arm64/v8"); err != nil {
		t.Errorf("linux/arm64/v8: %v", err)
	}
}
