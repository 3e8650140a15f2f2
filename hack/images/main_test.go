package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// testVersion is the version the shared build stamps; distinct from anything git describe gives.
const testVersion = "v0.0.0-imagestest"

// The shared build: every binary for every platform, once per test binary, the way "make images"
// runs it: this command built without the race detector (which would make compressing the layers
// several times slower) and run as a subprocess.
var (
	shared struct {
		once   sync.Once
		cli    string
		dir    string
		src    source
		images []built
		err    error
	}
	workDir string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ekslink-images-test-")
	if err != nil {
		panic(err)
	}
	workDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the SDK module this module sits in (hack/images).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildShared builds the images once into a directory of its own.
func buildShared(t *testing.T) (source, []built) {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		root := repoRoot(t)
		if shared.src, shared.err = inspectSource(ctx, root, testVersion, ""); shared.err != nil {
			return
		}
		shared.cli = filepath.Join(workDir, "images")
		build := exec.CommandContext(ctx, "go", "build", "-o", shared.cli, ".")
		if out, err := build.CombinedOutput(); err != nil {
			shared.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		shared.dir = filepath.Join(workDir, "first")
		shared.images, shared.err = runBuild(ctx, root, shared.dir)
	})
	if shared.err != nil {
		t.Fatalf("building the images: %v", shared.err)
	}
	return shared.src, shared.images
}

// runBuild runs "images build" as make images does, into out, and parses what it prints.
func runBuild(ctx context.Context, root, out string) ([]built, error) {
	cmd := exec.CommandContext(ctx, shared.cli, "build", "-root", root, "-out", out,
		"-version", testVersion, "-load-platform", platforms[0].String())
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("images build: %v\n%s", err, stderr.String())
	}
	var images []built
	for i, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		// <archive> <name>:<tag>@<digest>
		archive, ref, ok := strings.Cut(line, " ")
		tagged, digest, ok2 := strings.Cut(ref, "@")
		if !ok || !ok2 || i >= len(binaries) {
			return nil, fmt.Errorf("images build printed %q", stdout.String())
		}
		tag, err := name.NewTag(tagged)
		if err != nil {
			return nil, err
		}
		h, err := v1.NewHash(digest)
		if err != nil {
			return nil, err
		}
		images = append(images, built{Binary: binaries[i], Ref: tag, Digest: h, Archive: archive})
	}
	return images, nil
}
