package node

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// imageRepo prefixes the local test images; the name says they exist only here and are never pulled.
const imageRepo = "ekslink.test/e2e/"

// testImages are the images every node has: the sandbox ("pause") and the test workload
// ("probe"), each one static Go binary of this module's cmd directory as the entrypoint.
var testImages = []string{"pause", "probe"}

// imageRef is the reference of a local test image.
func imageRef(name string) string { return imageRepo + name + ":v1" }

// buildImage compiles ./cmd/<name> of this module (static, CGO off) and writes a one-layer image
// whose config carries the platform (containerd's import drops images without one) and the
// binary as entrypoint (the CRI cannot start an image without one) to a docker-archive tarball
// that `ctr image import` reads. The user is a numeric non-root one; pods may override it.
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
