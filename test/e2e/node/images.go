package node

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// imageRepo prefixes the local test images; the name says they exist only here and are never pulled.
const imageRepo = "ekslink.test/e2e/"

// testImages are the images every node has, each one static Go binary of this module's cmd
// directory as the entrypoint: the sandbox ("pause"), the test workload ("probe"), the stand-in
// for the SSM agent in the connector pod ("ssm-agent") and an AWS SDK client ("aws-credentials").
var testImages = []string{"pause", "probe", "ssm-agent", "aws-credentials"}

// rootImages run as root, like the image they stand in for: the unmodified SSM agent runs as root
// and hardens its vault to root-only files, so its stand-in must read them as root too.
var rootImages = map[string]bool{"ssm-agent": true}

// imageRef is the reference of a local test image.
func imageRef(name string) string { return imageRepo + name + ":v1" }

// buildImage compiles ./cmd/<name> of this module (static, CGO off) and writes a one-layer image
// whose config carries the platform (containerd's import drops images without one) and the
// binary as entrypoint (the CRI cannot start an image without one) to a docker-archive tarball
// that `ctr image import` reads. The user is a numeric non-root one (root for rootImages); pods
// may override it.
func buildImage(ctx context.Context, moduleDir, outDir, imgName string) (path string, err error) {
	bin := filepath.Join(outDir, imgName)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/"+imgName)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building ./cmd/%s for the %s image: %w\n%s", imgName, imgName, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	var layerTar bytes.Buffer
	tw := tar.NewWriter(&layerTar)
	epoch := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Name: imgName, Mode: 0o755, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
		return "", err
	}
	if _, err := tw.Write(data); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	layerBytes := layerTar.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerBytes)), nil })
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return "", err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Entrypoint = []string{"/" + imgName}
	cfg.Config.User = "65532:65532"
	if rootImages[imgName] {
		cfg.Config.User = "0:0"
	}
	cfg.Config.Labels = map[string]string{"org.opencontainers.image.description": "ekslink e2e test image, never shipped"}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return "", err
	}
	tag, err := name.NewTag(imageRef(imgName))
	if err != nil {
		return "", err
	}
	path = filepath.Join(outDir, imgName+".tar")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		return "", fmt.Errorf("writing the %s image: %w", imgName, err)
	}
	return path, nil
}

// ImportArchive imports an image archive built elsewhere (hack/images, "make images": an OCI
// layout with docker's manifest.json) into the node's containerd and returns the image's
// reference, the first RepoTags entry of manifest.json, for pods to name with ImagePullPolicy
// IfNotPresent or Never.
func (n *Node) ImportArchive(t testing.TB, path string) string {
	t.Helper()
	ref, err := archiveRef(path)
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n.containerd.importImage(ctx, path); err != nil {
		t.Fatalf("node: %v", err)
	}
	return ref
}

// archiveRef reads the first RepoTags entry of the manifest.json in an image archive.
func archiveRef(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			return "", fmt.Errorf("%s has no manifest.json (is it an archive of \"make images\"?): %w", path, err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		var m []struct{ RepoTags []string }
		if err := json.NewDecoder(tr).Decode(&m); err != nil {
			return "", fmt.Errorf("%s: manifest.json: %w", path, err)
		}
		if len(m) == 0 || len(m[0].RepoTags) == 0 {
			return "", fmt.Errorf("%s: manifest.json names no image", path)
		}
		return m[0].RepoTags[0], nil
	}
}
