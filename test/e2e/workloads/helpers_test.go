package workloads_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/ekslink/ekslink/manifest"
	"github.com/ekslink/ekslink/test/e2e/node"
)

// repoRoot is the ekslink repository (three levels above this package).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test's source")
	}
	return filepath.Join(filepath.Dir(self), "..", "..", "..")
}

// shippedImage imports _output/images/<name>.tar, the archive "make images" builds (make e2e builds
// it first; EKSLINK_E2E_IMAGES names another directory), and returns its reference. Without the
// archive the test fails under CI and is skipped elsewhere.
func shippedImage(t *testing.T, n *node.Node, name string) string {
	t.Helper()
	dir := os.Getenv("EKSLINK_E2E_IMAGES")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "_output", "images")
	}
	path := filepath.Join(dir, name+".tar")
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: run \"make images\" (make e2e does): %v", path, err)
		}
		t.Skipf("skipping: %s is missing: run \"make images\"", path)
	}
	return n.ImportArchive(t, path)
}

// apply writes the objects with manifest.Apply (server-side apply), as ekslink's own install does.
func apply(t *testing.T, n *node.Node, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := manifest.Apply(ctx, n.Env.Config, objs, manifest.ApplyOptions{}); err != nil {
		t.Fatalf("applying: %v", err)
	}
}

// applyRendered applies the renderer's typed objects.
func applyRendered(t *testing.T, n *node.Node, objs []kruntime.Object) {
	t.Helper()
	u, err := manifest.Unstructured(objs)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, n, u)
}

// createNamespace creates a namespace as "helm install --create-namespace" does (no labels).
func createNamespace(t *testing.T, n *node.Node, ns string) {
	t.Helper()
	_, err := n.Env.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	n.WaitServiceAccount(t, ns)
}

// deleteAndWait deletes an object and waits until it and the pods it named are gone.
func deleteAndWait(t *testing.T, n *node.Node, gvr schema.GroupVersionResource, ns, name string, podSelector string) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(n.Env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fg := metav1.DeletePropagationForeground
	if err := dyn.Resource(gvr).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		pods, err := n.Env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podSelector})
		if err == nil && len(pods.Items) == 0 {
			if _, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s %s/%s or its pods still exist two minutes after the delete", gvr.Resource, ns, name)
}
