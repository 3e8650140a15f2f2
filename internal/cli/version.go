package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version overrides the module version for release builds:
//
//	go build -ldflags "-X github.com/ekslink/ekslink/internal/cli.version=v0.2.0" ./cmd/ekslink
//
// Empty (the default) means: the module version from the build information.
var version string

// Info describes a build: where it came from and what built it.
type Info struct {
	// Version is the release version (-ldflags -X override), else the main module's version as
	// the go command stamped it ("v0.1.0" when built with go install module@version, "(devel)"
	// when built from a checkout).
	Version string `json:"version"`
	// Revision is the VCS revision of the checkout it was built from ("" when unknown).
	Revision string `json:"revision,omitempty"`
	// Time is the commit time of Revision (RFC 3339, "" when unknown).
	Time string `json:"time,omitempty"`
	// Modified reports uncommitted changes in the checkout at build time.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// BuildInfo returns the running binary's Info.
func BuildInfo() Info {
	bi, _ := debug.ReadBuildInfo()
	return infoFrom(bi, version)
}

// infoFrom builds an Info from build information (nil when the binary has none) and a release
// override.
func infoFrom(bi *debug.BuildInfo, override string) Info {
	info := Info{Version: "(unknown)", GoVersion: runtime.Version()}
	goos, goarch := runtime.GOOS, runtime.GOARCH
	if bi != nil {
		info.GoVersion = bi.GoVersion
		if bi.Main.Version != "" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.Time = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			case "GOOS":
				goos = s.Value
			case "GOARCH":
				goarch = s.Value
			}
		}
	}
	info.Platform = goos + "/" + goarch
	if override != "" {
		info.Version = override
	}
	return info
}

// String is the one-line form: "<version> (revision <rev>[, modified]) <go> <os/arch>".
func (i Info) String() string {
	var b strings.Builder
	b.WriteString(i.Version)
	if i.Revision != "" {
		fmt.Fprintf(&b, " (revision %s", i.Revision)
		if i.Modified {
			b.WriteString(", modified")
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, " %s %s", i.GoVersion, i.Platform)
	return b.String()
}

// AddVersion gives root a --version flag and a "version" subcommand ("version -o json" for
// machines), both reporting BuildInfo under the binary's name.
func AddVersion(root *cobra.Command) {
	info := BuildInfo()
	root.Version = info.String()
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS revision and Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch output {
			case "", "text":
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", root.Name(), info)
				return err
			case "json":
				b, err := json.Marshal(info)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
				return err
			default:
				return fmt.Errorf("--output %q: want text or json", output)
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	root.AddCommand(cmd)
}
