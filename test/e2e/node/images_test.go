package node

import (
	"context"
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image tarball must carry what containerd and the CRI need (../../../shared REFERENCE §7):
// a platform (ctr image import drops images without one) and an entrypoint (the CRI cannot start
// an image without one), under the tag the pods name.
func TestBuildImageHasPlatformAndEntrypoint(t *testing.T) {
	path, err := buildImage(context.Background(), moduleDir(t), t.TempDir(), "pause")
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(imageRef("pause"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatalf("the tarball has no image tagged %s: %v", tag, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("platform = %s/%s, want linux/%s", cfg.OS, cfg.Architecture, runtime.GOARCH)
	}
	if len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/pause" {
		t.Errorf("entrypoint = %q, want [/pause]", cfg.Config.Entrypoint)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user = %q, want a numeric non-root user", cfg.Config.User)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d (%v), want 1", len(layers), err)
	}
}

func moduleDir(t *testing.T) string {
	t.Helper()
	dir, err := sourceModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
