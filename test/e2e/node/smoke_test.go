package node_test

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/test/e2e/node"
)

// TestNodeRunsPods runs the workloads REFERENCE §7 ran on this machine kind, on a node started
// by the harness: a host-network pod, and a bridge-CNI pod as non-root with a read-only root file
// system and no capabilities, each to phase Succeeded, with the pod's log read through the API
// server (so the API server reaches the kubelet over authenticated TLS); a probe whose
// expectation fails ends Failed (the verdict is the probe's, not the harness's); a pod still
// running when the node stops (after a command exec'd in it through the API server ran) is removed by Stop, which leaves nothing behind.
func TestNodeRunsPods(t *testing.T) {
	started := time.Now()
	n := node.Start(t, node.Options{})
	t.Logf("node Ready after %s", time.Since(started).Round(time.Millisecond))
	ctx := envtest.Context(t)
	ns := n.Env.Namespace(t)
	n.WaitServiceAccount(t, ns)
	pods := n.Env.Client.CoreV1().Pods(ns)

	smoke := time.Now()
	hostPod := probePod("host", n, "-expect-address-in", n.PodCIDR.String())
	hostPod.Spec.HostNetwork = true
	bridgePod := probePod("bridge", n, "-expect-uid", "65532", "-expect-read-only-root", "-expect-no-capabilities",
		"-expect-address-in", n.PodCIDR.String(), "-expect-no-default-route")
	wrongPod := probePod("wrong-uid", n, "-expect-uid", "0")
	sleeper := probePod("sleeper", n, "-wait")
	for _, p := range []*corev1.Pod{hostPod, bridgePod, wrongPod, sleeper} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating pod %s: %v", p.Name, err)
		}
	}

	host := n.WaitPhase(t, ns, "host", corev1.PodSucceeded)
	if host.Status.PodIP != n.IP.String() {
		t.Errorf("host-network pod IP = %q, want the node's %s", host.Status.PodIP, n.IP)
	}
	bridge := n.WaitPhase(t, ns, "bridge", corev1.PodSucceeded)
	if ip := net.ParseIP(bridge.Status.PodIP); ip == nil || !n.PodCIDR.Contains(ip) || ip.Equal(n.IP) {
		t.Errorf("bridge pod IP = %q, want an address of %s from the bridge CNI", bridge.Status.PodIP, n.PodCIDR)
	}
	logs := n.PodLog(t, ns, "bridge", "")
	for _, want := range []string{"uid=65532", "read-only file system", "CapEff=0000000000000000", "default routes=0", "probe ok"} {
		if !strings.Contains(logs, want) {
			t.Errorf("bridge pod log (read through the API server) lacks %q:\n%s", want, logs)
		}
	}
	n.WaitPhase(t, ns, "wrong-uid", corev1.PodFailed)
	if logs := n.PodLog(t, ns, "wrong-uid", ""); !strings.Contains(logs, "probe FAILED: uid 65532, expected 0") {
		t.Errorf("wrong-uid pod log lacks the probe's verdict:\n%s", logs)
	}
	n.WaitPhase(t, ns, "sleeper", corev1.PodRunning)
	out := n.Exec(t, ns, "sleeper", "probe", "/probe", "-expect-uid", "65532", "-expect-read-only-root", "-expect-no-capabilities")
	if !strings.Contains(out, "probe ok") {
		t.Errorf("exec through the API server did not run the probe in the pod:\n%s", out)
	}
	t.Logf("smoke pods done after %s", time.Since(smoke).Round(time.Millisecond))

	// The sleeper still runs: Stop must kill it, release its address and leave nothing behind.
	stopping := time.Now()
	if err := n.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("node stopped in %s", time.Since(stopping).Round(time.Millisecond))
	if left := n.Leftovers(); len(left) > 0 {
		t.Errorf("left behind after Stop: %v", left)
	}
	if out, _ := exec.Command("mount").Output(); strings.Contains(string(out), n.Dir) {
		t.Errorf("mount still lists the node directory %s", n.Dir)
	}
}

func probePod(name string, n *node.Node, args ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](65532),
				RunAsGroup:     ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "probe",
				Image:           n.Image("probe"),
				ImagePullPolicy: corev1.PullNever,
				Args:            args,
				SecurityContext: &corev1.SecurityContext{
					ReadOnlyRootFilesystem:   ptr.To(true),
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}
