package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// versionVar is the variable every binary reports in its "version" subcommand.
const versionVar = "github.com/ekslink/ekslink/internal/cli.version"

// goBuild compiles one binary for p into dir and returns its path. The binary is static
// (CGO_ENABLED=0), has no build paths (-trimpath), carries the VCS revision (-buildvcs=auto) and
// src.Version, and is built with fixed GOAMD64/GOARM64 levels and GOFLAGS, so the environment of
// the person building cannot change it.
func goBuild(ctx context.Context, goCmd string, src source, b binary, p platform, dir string) (string, error) {
	out := filepath.Join(dir, b.Name+"-"+p.OS+"-"+p.Architecture)
	cmd := exec.CommandContext(ctx, goCmd, "build",
		"-trimpath", "-buildvcs=auto",
		"-ldflags", "-s -w -buildid= -X "+versionVar+"="+src.Version,
		"-o", out, b.Package)
	cmd.Dir = src.Root
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture,
		"GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=-mod=readonly", "GOEXPERIMENT=", "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s for %s: %w\n%s", b.Package, p, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
