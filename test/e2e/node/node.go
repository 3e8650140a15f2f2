package node

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
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
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/internal/testenv"
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
	Env *testenv.Env
	// IP is the node's InternalIP: the pod bridge's address, on this machine only.
	IP net.IP
	// PodCIDR is the /24 the bridge CNI hands pod addresses from.
	PodCIDR *net.IPNet
	// Dir is the temporary directory everything lives under (removed by Stop).
	Dir string

	net        *network
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
func requirements(t testing.TB) testenv.Binaries {
	t.Helper()
	var missing []error
	bins, err := testenv.FindBinaries()
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

func (n *Node) start(ctx context.Context, t testing.TB, bins testenv.Binaries, opts Options) error {
	for _, d := range []string{"logs", "pki", "images", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "volume-plugins"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			return err
		}
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

	// Credentials: static tokens give each component its real identity (the kubelet is
	// system:node:<name> in system:nodes, held to its own node by NodeRestriction);
	// one CA signs the kubelet's serving certificate and the API server's client certificate
	// for the kubelet, so logs, exec and attach go over verified, authenticated TLS.
	pki := filepath.Join(n.Dir, "pki")
	ca, err := testenv.NewCA("ekslink-e2e-node-ca")
	if err != nil {
		return err
	}
	kubeletCert, kubeletKey, err := ca.Issue(Name, nil, []string{Name}, []net.IP{n.IP}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	apiCert, apiKey, err := ca.Issue(kubeletClientUser, nil, nil, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return err
	}
	tokens := map[string]string{}
	for _, who := range []string{"kubelet", "kcm", "scheduler"} {
		tokens[who] = randomToken()
	}
	tokenFile := fmt.Sprintf("%s,system:node:%s,uid-node,\"system:nodes\"\n%s,system:kube-controller-manager,uid-kcm\n%s,system:kube-scheduler,uid-scheduler\n",
		tokens["kubelet"], Name, tokens["kcm"], tokens["scheduler"])
	// The API server's files live apart from the node's directory: Stop removes the node and
	// kills whatever names its directory, while the control plane outlives it (its own cleanup).
	apiDir, err := os.MkdirTemp("", "ekslink-node-apiserver-")
	if err != nil {
		return err
	}
	t.Cleanup(func() { _ = os.RemoveAll(apiDir) })
	files := map[string]map[string][]byte{
		pki:    {"ca.crt": ca.PEM, "kubelet.crt": kubeletCert, "kubelet.key": kubeletKey},
		apiDir: {"ca.crt": ca.PEM, "kubelet-client.crt": apiCert, "kubelet-client.key": apiKey, "tokens.csv": []byte(tokenFile)},
	}
	for dir, byName := range files {
		for name, data := range byName {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				return err
			}
		}
	}
	n.Env = testenv.Start(t, testenv.Options{ExtraArgs: []string{
		"--enable-admission-plugins=NodeRestriction",
		"--token-auth-file=" + filepath.Join(apiDir, "tokens.csv"),
		"--kubelet-client-certificate=" + filepath.Join(apiDir, "kubelet-client.crt"),
		"--kubelet-client-key=" + filepath.Join(apiDir, "kubelet-client.key"),
		"--kubelet-certificate-authority=" + filepath.Join(apiDir, "ca.crt"),
		"--kubelet-preferred-address-types=InternalIP",
	}})
	t.Cleanup(n.cleanup(t))
	t.Logf("node: control plane up at %s", time.Since(started).Round(time.Millisecond))
	// The API server's calls to the kubelet (logs, exec, attach, port-forward) are authorized by
	// the kubelet through a SubjectAccessReview: bind the role kubeadm binds for them. testenv's
	// API server authorizes with RBAC only (its --authorization-mode cannot be given twice), so
	// the kubelet gets the bootstrap system:node role through its group, as before the Node
	// authorizer existed.
	for _, b := range []struct {
		name, role string
		subject    rbacv1.Subject
	}{
		{"ekslink-e2e:apiserver-kubelet-client", "system:kubelet-api-admin", testenv.UserSubject(kubeletClientUser)},
		{"ekslink-e2e:nodes", "system:node", rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}},
	} {
		if _, err := n.Env.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: b.name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.role},
			Subjects:   []rbacv1.Subject{b.subject},
		}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("binding %s: %w", b.role, err)
		}
	}

	if n.containerd, err = startContainerd(n.Dir, filepath.Join(n.Dir, "cni/net.d")); err != nil {
		return err
	}
	for _, img := range images {
		if err := n.containerd.importImage(ctx, img); err != nil {
			return err
		}
	}
	t.Logf("node: containerd up, images imported at %s", time.Since(started).Round(time.Millisecond))

	saKey, err := testenv.PrivateKeyPEM(n.Env.SigningKeys[0])
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pki, "sa.key"), saKey, 0o600); err != nil {
		return err
	}
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

// kubeletClientUser is the user of the API server's client certificate for the kubelet.
const kubeletClientUser = "ekslink-e2e:apiserver-kubelet-client"

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeKubeconfig writes a kubeconfig for the control plane with a bearer token.
func (n *Node) writeKubeconfig(name, token string) (string, error) {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: e2e
  context: {cluster: e2e, user: %s}
current-context: e2e
`, n.Env.URL, n.Env.CAFile, name, token, name)
	path := filepath.Join(n.Dir, "pki", name+".kubeconfig")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

func (n *Node) startControllers(bins testenv.Binaries, tokens map[string]string) error {
	kcmConfig, err := n.writeKubeconfig("kube-controller-manager", tokens["kcm"])
	if err != nil {
		return err
	}
	n.kcm, err = startProcess("kube-controller-manager", filepath.Join(n.Dir, "logs", "kube-controller-manager.log"),
		filepath.Join(bins.Dir, "kube-controller-manager"),
		"--kubeconfig="+kcmConfig,
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+filepath.Join(n.Dir, "pki", "sa.key"),
		"--root-ca-file="+n.Env.CAFile,
		"--flex-volume-plugin-dir="+filepath.Join(n.Dir, "volume-plugins"),
		"--leader-elect=false",
		"--secure-port=0",
		"--controllers=*",
		"--v=1",
	)
	if err != nil {
		return err
	}
	schedConfig, err := n.writeKubeconfig("kube-scheduler", tokens["scheduler"])
	if err != nil {
		return err
	}
	n.scheduler, err = startProcess("kube-scheduler", filepath.Join(n.Dir, "logs", "kube-scheduler.log"),
		filepath.Join(bins.Dir, "kube-scheduler"),
		"--kubeconfig="+schedConfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--v=1",
	)
	return err
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
