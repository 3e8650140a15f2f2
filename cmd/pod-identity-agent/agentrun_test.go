package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
)

// runAgent runs the agent's command with args until the returned stop is called; stop reports
// the command's error. done receives that error if the command exits earlier.
func runAgent(t *testing.T, args ...string) (done chan error, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newRootCommand()
	cmd.SetArgs(args)
	done = make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	return done, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	}
}

// boundPodToken creates pod in ns on node-1 for service account sa and returns the token kubelet
// would project for it: audience pods.eks.amazonaws.com, bound to the pod.
func boundPodToken(t *testing.T, env *envtest.Environment, ns, sa, pod string) string {
	t.Helper()
	ctx := envtest.Context(t)
	p, err := env.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod},
		Spec: corev1.PodSpec{ServiceAccountName: sa, NodeName: "node-1", Containers: []corev1.Container{{Name: "c", Image: "app"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := env.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:      []string{"pods.eks.amazonaws.com"},
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// firstAnswer polls the agent's credentials endpoint on port with token until it answers (30 s at
// most) and returns the status and body; it fails the test if the agent exits first.
func firstAnswer(t *testing.T, port int, token string, done <-chan error) (code int, body string) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/credentials", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, body = httpGet(t, url, token); code != -1 || time.Now().After(deadline) {
			return code, body
		}
		select {
		case err := <-done:
			t.Fatalf("the agent exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
