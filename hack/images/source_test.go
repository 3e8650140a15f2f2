package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitRepo makes a one-commit repository with a go.mod, committed at a fixed time.
func gitRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_COMMITTER_DATE", "2026-12-07T01:02:03Z")
	ctx := context.Background()
	for _, args := range [][]string{
		{"init", "-q"},
		{"add", "go.mod"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one", "--date=2026-12-07T01:02:03Z"},
	} {
		cmd := append([]string{"-c", "init.defaultBranch=main"}, args...)
		if _, err := git(ctx, dir, cmd...); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestVersionWithoutTagIsTheGoPseudoVersion(t *testing.T) {
	dir := gitRepo(t)
	ctx := context.Background()
	src, err := inspectSource(ctx, dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(src.Revision) != 40 || src.Version != "v0.0.0-20261207010203-"+src.Revision[:12] {
		t.Errorf("version %q revision %q", src.Version, src.Revision)
	}
	if want := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC); !src.Created.Equal(want) {
		t.Errorf("created %s, want the commit time %s", src.Created, want)
	}
	// Uncommitted changes are visible in the version.
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dirty, err := inspectSource(ctx, dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if dirty.Version != src.Version+"-dirty" {
		t.Errorf("dirty version %q", dirty.Version)
	}
}

func TestVersionFromTagAndOverrides(t *testing.T) {
	dir := gitRepo(t)
	ctx := context.Background()
	if _, err := git(ctx, dir, "tag", "v1.2.3"); err != nil {
		t.Fatal(err)
	}
	src, err := inspectSource(ctx, dir, "", "1700000000")
	if err != nil {
		t.Fatal(err)
	}
	if src.Version != "v1.2.3" {
		t.Errorf("version %q, want the tag", src.Version)
	}
	if !src.Created.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("created %s, want SOURCE_DATE_EPOCH", src.Created)
	}
	if src, err := inspectSource(ctx, dir, "v2.0.0-rc.1", ""); err != nil || src.Version != "v2.0.0-rc.1" {
		t.Errorf("override: %q %v", src.Version, err)
	}
	for _, tc := range []struct{ version, epoch, want string }{
		{"v1.0.0+build", "", "cannot be an image tag"},
		{"", "yesterday", "SOURCE_DATE_EPOCH"},
	} {
		if _, err := inspectSource(ctx, dir, tc.version, tc.epoch); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("version %q epoch %q: err = %v, want %q", tc.version, tc.epoch, err, tc.want)
		}
	}
	if _, err := inspectSource(ctx, t.TempDir(), "", ""); err == nil || !strings.Contains(err.Error(), "-root") {
		t.Errorf("no go.mod: err = %v", err)
	}
}
