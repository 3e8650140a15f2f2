package node

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/ekslink/ekslink/envtest"
)

// kubeletConfig is the KubeletConfiguration that runs on this machine kind (../../../shared
// REFERENCE §7): cgroupfs with failCgroupV1 false (cgroup v1 controllers with a cgroup2 mount
// beside them), no swap check, no node-allocatable enforcement, our containerd socket; pods'
// cgroups under the node's own cgroupRoot, logs and plugins under the node directory; the API
// server authenticated by its client certificate and authorized by SubjectAccessReview; eviction
// thresholds low enough that a busy shared machine does not evict the test pods.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
enforceNodeAllocatable: []
cgroupRoot: %[1]s
containerRuntimeEndpoint: unix://%[2]s
address: %[3]s
port: %[4]d
readOnlyPort: 0
healthzPort: 0
tlsCertFile: %[5]s
tlsPrivateKeyFile: %[6]s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[7]s}
authorization:
  mode: Webhook
podLogsDir: %[8]s
volumePluginDir: %[9]s
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
registerNode: true
`

func (n *Node) startKubelet(bins envtest.Binaries, token string) error {
	if err := n.makeCgroupRoot(); err != nil {
		return err
	}
	port, err := freePort(n.IP)
	if err != nil {
		return err
	}
	pki := filepath.Join(n.Dir, "pki")
	cfg := fmt.Sprintf(kubeletConfig, n.cgroupRoot, n.containerd.socket, n.IP, port,
		filepath.Join(pki, "kubelet.crt"), filepath.Join(pki, "kubelet.key"), filepath.Join(pki, "ca.crt"),
		filepath.Join(n.Dir, "pod-logs"), filepath.Join(n.Dir, "volume-plugins"))
	cfgPath := filepath.Join(n.Dir, "kubelet-config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	kubeconfig, err := n.writeKubeconfig("kubelet", token)
	if err != nil {
		return err
	}
	n.kubelet, err = startProcess("kubelet", filepath.Join(n.Dir, "logs", "kubelet.log"),
		filepath.Join(bins.Dir, "kubelet"),
		"--config="+cfgPath,
		"--kubeconfig="+kubeconfig,
		"--root-dir="+filepath.Join(n.Dir, "kubelet"),
		"--cert-dir="+pki,
		"--hostname-override="+Name,
		"--node-ip="+n.IP.String(),
		"--v=1",
	)
	return err
}

// freePort returns a TCP port on ip that was free a moment ago.
func freePort(ip net.IP) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cgroupMounts returns the mount points of the cgroup (v1) and cgroup2 hierarchies.
func cgroupMounts() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		fields, postFields := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(postFields) < 1 {
			continue
		}
		if postFields[0] == "cgroup" || postFields[0] == "cgroup2" {
			out = append(out, unescapeMount(fields[4]))
		}
	}
	return out, nil
}

// makeCgroupRoot creates the node's own cgroup in every hierarchy (the kubelet requires its
// cgroupRoot to exist); in the cpuset hierarchy a new cgroup needs its parent's CPUs and memory
// nodes before tasks can join it.
func (n *Node) makeCgroupRoot() error {
	n.cgroupRoot = "/" + filepath.Base(n.Dir)
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		d := filepath.Join(m, n.cgroupRoot)
		if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("creating cgroup %s: %w", d, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(m, f)); err == nil {
				if err := os.WriteFile(filepath.Join(d, f), v, 0o644); err != nil {
					return fmt.Errorf("initialising %s: %w", filepath.Join(d, f), err)
				}
			}
		}
	}
	return nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
