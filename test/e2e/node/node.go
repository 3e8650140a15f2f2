package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
)

// Name is the node's name.
const Name = "ekslink-e2e-node"

// Options configure a node. The zero value is a working default.
type Options struct {
	// ReadyTimeout bounds the wait for the node to be Ready. Default: two minutes.
	ReadyTimeout time.Duration
}

// Node is a running single-node cluster.
type Node struct {
	// Env is the control plane (admin client, CA, service-account keys).
	Env *envtest.Environment
	// IP is the node's InternalIP: the pod bridge's address, on this machine only.
	IP net.IP
	// PodCIDR is the /24 the bridge CNI hands pod addresses from.
	PodCIDR *net.IPNet
	// Dir is the temporary directory everything lives under (removed by Stop).
	Dir string

	net        *network
	ca         *envtest.CA
	svcProxy   *serviceProxy
	containerd *containerd
	kcm        *process
	scheduler  *process
	kubelet    *process
	cgroupRoot string
	stopOnce   sync.Once
	stopErr    error
	reportOnce sync.Once
	logOnce    sync.Once
	// newHostPaths are the hostPaths absent before the node started (removed by Stop).
	newHostPaths []string
}

// Image returns the reference of a local test image: "pause" (sleeps until SIGTERM) or "probe"
// (cmd/probe). Pods must use ImagePullPolicy Never or IfNotPresent: nothing is pulled.
func (n *Node) Image(name string) string { return imageRef(name) }

// Start starts a node (a private control plane included) and waits until it is Ready. Stop runs in
// t.Cleanup, whether the test passes or fails, and fails the test if anything was left behind.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	bins := requirements(t)
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 2 * time.Minute
	}
	dir, err := os.MkdirTemp("", "ekslink-node-")
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	n := &Node{Dir: dir, newHostPaths: absentHostPaths()}
	// Registered now, so the directory goes even when a start step fails; registered again once
	// the control plane runs, so the node stops before it (cleanups run last-in first-out).
	t.Cleanup(n.cleanup(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := n.start(ctx, t, bins, opts); err != nil {
		t.Fatalf("node: %v", err)
	}
	return n
}

// cleanup returns a t.Cleanup function that stops the node and fails the test if the tear-down
// left anything behind (reported once however often it runs). When the test failed, it first
// copies the tails of the components' logs into the test log (Stop removes the files).
func (n *Node) cleanup(t testing.TB) func() {
	return func() {
		n.logOnce.Do(func() {
			if t.Failed() {
				t.Logf("node: the test failed; component logs before the tear-down:\n%s", n.logs())
			}
		})
		err := n.Stop()
		n.reportOnce.Do(func() {
			if err != nil {
				t.Errorf("node: tear-down: %v", err)
			}
		})
	}
}

// requirements returns the binaries, or fails (CI) / skips the test when something is missing.
func requirements(t testing.TB) envtest.Binaries {
	t.Helper()
	var missing []error
	bins, err := envtest.FindBinaries()
	if err != nil {
		missing = append(missing, err)
	}
	for _, b := range []string{"kubelet", "kube-controller-manager", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(bins.Dir, b)); err != nil {
			missing = append(missing, fmt.Errorf("%s is missing: run \"make nodebin\": %w", filepath.Join(bins.Dir, b), err))
		}
	}
	for _, tool := range []string{"containerd", "ctr", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, fmt.Errorf("%s is not installed: run \"hack/node-deps.sh\" as root", tool))
		}
	}
	if _, err := exec.LookPath("go"); err != nil {
		missing = append(missing, errors.New("go is not on PATH: the test images are built from ./cmd with it"))
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, plugin)); err != nil {
			missing = append(missing, fmt.Errorf("CNI plugin %s is not installed: run \"hack/node-deps.sh\" as root", plugin))
		}
	}
	if os.Geteuid() != 0 {
		missing = append(missing, errors.New("a node needs root (mounts, cgroups, network namespaces)"))
	}
	if len(missing) > 0 {
		err := errors.Join(missing...)
		if os.Getenv("CI") != "" {
			t.Fatalf("node: %v\n(CI is set, so this is a failure, not a skip)", err)
		}
		t.Skipf("skipping node test: %v", err)
	}
	return bins
}

func (n *Node) start(ctx context.Context, t testing.TB, bins envtest.Binaries, opts Options) error {
	for _, d := range []string{"logs", "pki", "images", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "volume-plugins"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := checkHostLinks(); err != nil {
		return err
	}
	started := time.Now()
	modDir, err := sourceModuleDir()
	if err != nil {
		return err
	}
	var images []string
	for _, name := range testImages {
		path, err := buildImage(ctx, modDir, filepath.Join(n.Dir, "images"), name)
		if err != nil {
			return err
		}
		images = append(images, path)
	}
	t.Logf("node: images built in %s", time.Since(started).Round(time.Millisecond))

	if n.net, err = newNetwork(); err != nil {
		return err
	}
	n.IP, n.PodCIDR = n.net.nodeIP, n.net.subnet
	if err := n.net.writeConflist(filepath.Join(n.Dir, "cni/net.d"), filepath.Join(n.Dir, "cni/ipam")); err != nil {
		return err
	}

	tokens, err := n.startControlPlane(ctx, t)
	if err != nil {
		return err
	}
	target, err := n.apiServerTarget()
	if err != nil {
		return err
	}
	if n.svcProxy, err = startServiceProxy(n.net.bridge, target); err != nil {
		return err
	}
	t.Logf("node: control plane up at %s", time.Since(started).Round(time.Millisecond))

	if n.containerd, err = startContainerd(n.Dir, filepath.Join(n.Dir, "cni/net.d")); err != nil {
		return err
	}
	for _, img := range images {
		if err := n.containerd.importImage(ctx, img); err != nil {
			return err
		}
	}
	t.Logf("node: containerd up, images imported at %s", time.Since(started).Round(time.Millisecond))

	if err := n.startControllers(bins, tokens); err != nil {
		return err
	}
	if err := n.startKubelet(bins, tokens["kubelet"]); err != nil {
		return err
	}
	if err := n.waitReady(ctx, opts.ReadyTimeout); err != nil {
		return err
	}
	t.Logf("node: %s Ready at %s", Name, time.Since(started).Round(time.Millisecond))
	return nil
}

// waitReady waits until the node is Ready and the default service account exists in default (the
// controller manager is working), failing early when a component exits.
func (n *Node) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "node not registered"
	for time.Now().Before(deadline) {
		for _, p := range []*process{n.kubelet, n.kcm, n.scheduler, n.containerd.proc} {
			if p.exited() {
				return fmt.Errorf("%s exited while waiting for the node:\n%s", p.name, p.logTail(40))
			}
		}
		node, err := n.Env.Client.CoreV1().Nodes().Get(ctx, Name, metav1.GetOptions{})
		if err == nil {
			last = "node not Ready"
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady {
					last = fmt.Sprintf("node Ready=%s: %s", c.Status, c.Message)
					if c.Status == corev1.ConditionTrue {
						if _, err := n.Env.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err == nil {
							return nil
						}
						last = "node Ready, but kube-controller-manager has not created the default service account"
					}
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s after %s", last, timeout)
}

// logs returns the tails of every component's log, for a failing start.
func (n *Node) logs() string {
	var s string
	for _, p := range []*process{n.kubelet, n.kcm, n.scheduler} {
		if p != nil {
			s += fmt.Sprintf("--- %s (tail)\n%s\n", p.name, p.logTail(30))
		}
	}
	if n.containerd != nil {
		s += fmt.Sprintf("--- containerd (tail)\n%s\n", n.containerd.proc.logTail(30))
	}
	return s
}

// Logs returns the tail of a component's log: "kubelet", "containerd", "kube-controller-manager"
// or "kube-scheduler".
func (n *Node) Logs(component string, lines int) string {
	return (&process{logPath: filepath.Join(n.Dir, "logs", component+".log")}).logTail(lines)
}

// sourceModuleDir is the e2e module's directory (the images are built from its cmd/).
func sourceModuleDir() (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("node: cannot locate the e2e module's source")
	}
	return filepath.Dir(filepath.Dir(self)), nil
}
