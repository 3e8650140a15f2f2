package node

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
)

// WaitServiceAccount waits for kube-controller-manager to create the namespace's default service
// account (pods are rejected without it).
func (n *Node) WaitServiceAccount(t testing.TB, ns string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := n.Env.Client.CoreV1().ServiceAccounts(ns).Get(context.Background(), "default", metav1.GetOptions{})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no default service account in %s after a minute: %v\n%s", ns, err, n.Logs("kube-controller-manager", 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitPhase waits up to two minutes for the pod to reach the phase, failing the test (with the
// pod's status and the kubelet's log) when it does not or ends in another terminal phase.
func (n *Node) WaitPhase(t testing.TB, ns, name string, want corev1.PodPhase) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last *corev1.Pod
	for time.Now().Before(deadline) {
		p, err := n.Env.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			last = p
			if p.Status.Phase == want {
				return p
			}
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s is not %s: %s\n--- kubelet\n%s\n--- containerd\n%s", ns, name, want, describe(last),
		n.Logs("kubelet", 40), n.Logs("containerd", 20))
	return nil
}

// WaitReady waits up to timeout for the pod to exist with a UID other than notUID ("" for any)
// and be Ready (every container's readiness probe passing), and returns it. On failure it reports
// the pod's status, each container's log and the kubelet's log.
func (n *Node) WaitReady(t testing.TB, ns, name string, notUID types.UID, timeout time.Duration) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *corev1.Pod
	for time.Now().Before(deadline) {
		p, err := n.Env.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && p.UID != notUID {
			last = p
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					return p
				}
			}
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				break
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	var logs strings.Builder
	if last != nil {
		for _, c := range append(append([]corev1.Container(nil), last.Spec.InitContainers...), last.Spec.Containers...) {
			fmt.Fprintf(&logs, "--- %s\n%s\n", c.Name, n.tryPodLog(ns, name, c.Name))
		}
	}
	t.Fatalf("pod %s/%s is not Ready after %s: %s\n%s--- kubelet\n%s", ns, name, timeout, describe(last), logs.String(), n.Logs("kubelet", 40))
	return nil
}

func describe(p *corev1.Pod) string {
	if p == nil {
		return "no such pod"
	}
	s := fmt.Sprintf("phase %s, conditions %v", p.Status.Phase, p.Status.Conditions)
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		s += fmt.Sprintf("\n  %s: ready=%v restarts=%d state=%+v last=%+v", cs.Name, cs.Ready, cs.RestartCount, cs.State, cs.LastTerminationState)
	}
	return s
}

// PodLog returns a container's log ("" for the pod's only container), read through the API server
// (which reaches the kubelet over authenticated TLS).
func (n *Node) PodLog(t testing.TB, ns, name, container string) string {
	t.Helper()
	out, err := n.podLog(ns, name, container)
	if err != nil {
		t.Fatalf("reading the log of %s/%s through the API server: %v", ns, name, err)
	}
	return out
}

func (n *Node) tryPodLog(ns, name, container string) string {
	out, err := n.podLog(ns, name, container)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return out
}

func (n *Node) podLog(ns, name, container string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := n.Env.Client.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{Container: container}).Stream(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	return string(data), err
}

// Exec runs a command in a container of a running pod through the API server (which reaches the
// kubelet, which reaches containerd's streaming server) and returns its combined output. A
// command that exits non-zero fails the test.
func (n *Node) Exec(t testing.TB, ns, name, container string, command ...string) string {
	t.Helper()
	req := n.Env.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(n.Env.Config, "GET", req.URL().String())
	if err != nil {
		t.Fatal(err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(n.Env.Config, "POST", req.URL())
	if err != nil {
		t.Fatal(err)
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, httpstream.IsUpgradeFailure)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &out}); err != nil {
		t.Fatalf("exec %v in %s/%s (%s): %v\n%s\n--- kubelet\n%s", command, ns, name, container, err, out.String(), n.Logs("kubelet", 30))
	}
	return out.String()
}
