package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerdConfig is the node's own containerd configuration (version 2, containerd 1.6): root,
// state, sockets and runc state under the node directory; the CRI uses the local pause image as
// sandbox and our CNI network; restrict_oom_score_adj because the kubelet asks for -998 for
// sandboxes, which this machine refuses (runc then fails with "can't get final child's PID from
// pipe: EOF"; ../../../shared REFERENCE §7).
const containerdConfig = `version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[7]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[8]q
    conf_dir = %[9]q
    max_conf_num = 1
`

// cniBinDir is where Debian's containernetworking-plugins puts the plugins.
const cniBinDir = "/usr/lib/cni"

type containerd struct {
	proc   *process
	socket string
}

func startContainerd(dir, confDir string) (*containerd, error) {
	cdir := filepath.Join(dir, "containerd")
	for _, d := range []string{filepath.Join(dir, "logs"), cdir, filepath.Join(cdir, "root"), filepath.Join(cdir, "state"), filepath.Join(cdir, "opt"), filepath.Join(cdir, "runc")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	socket := filepath.Join(dir, "containerd.sock")
	cfg := fmt.Sprintf(containerdConfig,
		filepath.Join(cdir, "root"), filepath.Join(cdir, "state"), socket, socket+".ttrpc",
		filepath.Join(cdir, "opt"), imageRef("pause"), filepath.Join(cdir, "runc"), cniBinDir, confDir)
	cfgPath := filepath.Join(cdir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p, err := startProcess("containerd", filepath.Join(dir, "logs", "containerd.log"), "containerd", "--config", cfgPath)
	if err != nil {
		return nil, err
	}
	c := &containerd{proc: p, socket: socket}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p.exited() {
			return nil, fmt.Errorf("containerd exited at start:\n%s", p.logTail(30))
		}
		if err := exec.Command("ctr", "--address", socket, "version").Run(); err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			p.stop(5 * time.Second)
			return nil, fmt.Errorf("containerd not answering on %s after 30s:\n%s", socket, p.logTail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// importImage imports a docker-archive tarball into the k8s.io namespace, the one the CRI uses.
func (c *containerd) importImage(ctx context.Context, tarPath string) error {
	out, err := exec.CommandContext(ctx, "ctr", "--address", c.socket, "-n", "k8s.io", "images", "import", tarPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr images import %s: %w\n%s", tarPath, err, out)
	}
	return nil
}

// removeAllSandboxes stops and removes every pod sandbox through the CRI: containerd kills their
// containers, runs the CNI DEL (veth, IP lease), and unmounts their shm and network namespace.
func (c *containerd) removeAllSandboxes(ctx context.Context) error {
	conn, err := grpc.NewClient("unix://"+c.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("listing pod sandboxes: %w", err)
	}
	var errs []error
	for _, sb := range list.Items {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("stopping sandbox %s (%s/%s): %w", sb.Id, sb.Metadata.GetNamespace(), sb.Metadata.GetName(), err))
			continue
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("removing sandbox %s: %w", sb.Id, err))
		}
	}
	return errors.Join(errs...)
}
