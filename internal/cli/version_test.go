package cli

import (
	"bytes"
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestInfoFromBuildInformation(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/ekslink/ekslink", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs.revision", Value: "485cba9abcdef"}, {Key: "vcs.time", Value: "2026-12-07T02:30:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	for _, tc := range []struct {
		name, override, want string
	}{
		{"a checkout build names its revision and local changes", "", "(devel) (revision 485cba9abcdef, modified) go1.26.8 linux/arm64"},
		{"a release override replaces the module version only", "v0.2.0", "v0.2.0 (revision 485cba9abcdef, modified) go1.26.8 linux/arm64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := infoFrom(bi, tc.override).String(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	clean := infoFrom(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.1.0"}}, "")
	if clean.Version != "v0.1.0" || clean.Revision != "" || clean.Modified || strings.Contains(clean.String(), "revision") {
		t.Errorf("go install module@version build: %+v %q", clean, clean)
	}
	if none := infoFrom(nil, ""); none.Version != "(unknown)" || none.GoVersion == "" || none.Platform == "" {
		t.Errorf("no build information: %+v", none)
	}
}

func TestVersionCommandAndFlag(t *testing.T) {
	newRoot := func() *cobra.Command {
		root := &cobra.Command{Use: "tool", SilenceUsage: true, SilenceErrors: true}
		root.AddCommand(&cobra.Command{Use: "other", Run: func(*cobra.Command, []string) {}})
		AddVersion(root)
		return root
	}
	run := func(args ...string) (string, error) {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		err := root.Execute()
		return out.String(), err
	}
	want := "tool " + BuildInfo().String() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if got, err := run(args...); err != nil || got != want {
			t.Errorf("%v: %q, %v; want %q", args, got, err, want)
		}
	}
	got, err := run("version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var info Info
	if err := json.Unmarshal([]byte(got), &info); err != nil || info != BuildInfo() {
		t.Errorf("json %q: %+v %v", got, info, err)
	}
	if _, err := run("version", "-o", "yaml"); err == nil || !strings.Contains(err.Error(), "text or json") {
		t.Errorf("unknown format: %v", err)
	}
}
