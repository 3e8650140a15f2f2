package node

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Our containerd (own config, root, state and socket) imports the locally built images into the
// CRI's namespace, and the CRI lists them under the references pods and sandbox_image use: without
// a platform in the image config, ctr's import drops the image and this fails (REFERENCE §7).
func TestContainerdImportsLocalImages(t *testing.T) {
	for _, tool := range []string{"containerd", "ctr"} {
		if _, err := exec.LookPath(tool); err != nil || os.Geteuid() != 0 {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing or not root (run hack/node-deps.sh as root); CI is set, so this is a failure", tool)
			}
			t.Skipf("needs root and %s (hack/node-deps.sh)", tool)
		}
	}
	dir, err := os.MkdirTemp("", "ekslink-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var c *containerd
	t.Cleanup(func() {
		if c != nil {
			c.proc.stop(10 * time.Second)
		}
		if err := unmountUnder(dir); err != nil {
			t.Error(err)
		}
		if m, _ := mountsUnder(dir); len(m) > 0 {
			t.Errorf("mounts left under %s: %v", dir, m)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	if c, err = startContainerd(dir, filepath.Join(dir, "net.d")); err != nil {
		t.Fatal(err)
	}
	for _, name := range testImages {
		path, err := buildImage(ctx, moduleDir(t), dir, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.importImage(ctx, path); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := grpc.NewClient("unix://"+c.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	imgs := runtimeapi.NewImageServiceClient(conn)
	for _, name := range testImages {
		resp, err := imgs.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: imageRef(name)}})
		if err != nil {
			t.Fatalf("CRI ImageStatus %s: %v", imageRef(name), err)
		}
		if resp.Image == nil {
			t.Fatalf("the CRI does not see %s after the import", imageRef(name))
		}
		want := int64(65532)
		if rootImages[name] {
			want = 0
		}
		if resp.Image.Uid == nil || resp.Image.Uid.Value != want {
			t.Errorf("%s: CRI reports user %v, want %d", name, resp.Image.Uid, want)
		}
	}
}
