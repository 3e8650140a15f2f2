package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// source describes the checkout the images are built from.
type source struct {
	// Root is the repository root (the directory holding the SDK's go.mod).
	Root string
	// Revision is the full commit hash of HEAD.
	Revision string
	// Created is the fixed time of every timestamp in the images: SOURCE_DATE_EPOCH when set,
	// else the commit time of HEAD, so the same sources give the same digests.
	Created time.Time
	// Version is the version stamped into the binaries and the images' labels and tags.
	Version string
}

// tagPattern is the OCI distribution spec's tag grammar.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// inspectSource reads the revision, time and version of the checkout at root. version overrides
// the derived version; sourceDateEpoch (the SOURCE_DATE_EPOCH value, "" when unset) overrides
// the commit time.
func inspectSource(ctx context.Context, root, version, sourceDateEpoch string) (source, error) {
	src := source{Root: root}
	if _, err := os.Stat(root + "/go.mod"); err != nil {
		return src, fmt.Errorf("repository root %s: %w (pass -root the directory holding ekslink's go.mod)", root, err)
	}
	rev, err := git(ctx, root, "rev-parse", "HEAD")
	if err != nil {
		return src, err
	}
	src.Revision = rev
	if sourceDateEpoch != "" {
		secs, err := strconv.ParseInt(sourceDateEpoch, 10, 64)
		if err != nil || secs < 0 {
			return src, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want whole seconds since 1970", sourceDateEpoch)
		}
		src.Created = time.Unix(secs, 0).UTC()
	} else {
		ct, err := git(ctx, root, "log", "-1", "--format=%ct", "HEAD")
		if err != nil {
			return src, err
		}
		secs, err := strconv.ParseInt(ct, 10, 64)
		if err != nil {
			return src, fmt.Errorf("commit time %q of HEAD: %w", ct, err)
		}
		src.Created = time.Unix(secs, 0).UTC()
	}
	if version == "" {
		if version, err = describe(ctx, root); err != nil {
			return src, err
		}
	}
	if !tagPattern.MatchString(version) {
		return src, fmt.Errorf("version %q cannot be an image tag: want letters, digits, '.', '_' and '-' only (at most 128)", version)
	}
	src.Version = version
	return src, nil
}

// describe is the version of a checkout: "git describe" from the nearest v* tag
// (v0.2.0, v0.2.0-3-g1a2b3c4d5e6f), else the Go pseudo-version the go command would stamp for
// the commit (v0.0.0-20261207025129-b3ccb4c1a2b3); "-dirty" is appended for uncommitted changes.
func describe(ctx context.Context, root string) (string, error) {
	dirty := ""
	status, err := git(ctx, root, "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return "", err
	}
	if status != "" {
		dirty = "-dirty"
	}
	if tag, err := git(ctx, root, "describe", "--tags", "--match", "v[0-9]*", "--abbrev=12"); err == nil {
		return tag + dirty, nil
	}
	out, err := git(ctx, root, "log", "-1", "--format=%ct %H", "HEAD")
	if err != nil {
		return "", err
	}
	ct, rev, _ := strings.Cut(out, " ")
	secs, err := strconv.ParseInt(ct, 10, 64)
	if err != nil || len(rev) < 12 {
		return "", fmt.Errorf("git log -1 --format='%%ct %%H': unexpected %q", out)
	}
	return "v0.0.0-" + time.Unix(secs, 0).UTC().Format("20060102150405") + "-" + rev[:12] + dirty, nil
}

// git runs git in dir and returns its trimmed standard output.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s in %s: %w: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
