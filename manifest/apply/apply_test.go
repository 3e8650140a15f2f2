package apply_test

import (
	"errors"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/manifest/apply"
)

func TestMain(m *testing.M) { envtest.Main(m) }

func configMap(ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"data":     map[string]any{"k": "v"},
	}}
	return u
}

// managers returns the field managers that own fields of the object through server-side apply.
func managers(mf []metav1.ManagedFieldsEntry) map[string]bool {
	out := map[string]bool{}
	for _, e := range mf {
		if e.Operation == metav1.ManagedFieldsOperationApply {
			out[e.Manager] = true
		}
	}
	return out
}

// TestApplyWritesWithTheFieldManager checks the default and a given field manager against what the
// real API server records in managedFields (ownership must not move between releases).
func TestApplyWritesWithTheFieldManager(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	if err := apply.Apply(ctx, env.Config, []*unstructured.Unstructured{configMap(ns, "default-manager")}, apply.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := apply.Apply(ctx, env.Config, []*unstructured.Unstructured{configMap(ns, "own-manager")}, apply.Options{FieldManager: "mine"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"default-manager": apply.DefaultFieldManager, "own-manager": "mine"} {
		cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := managers(cm.ManagedFields); len(got) != 1 || !got[want] {
			t.Errorf("%s: apply managers = %v, want only %q", name, got, want)
		}
	}
	// A dry run persists nothing.
	if err := apply.Apply(ctx, env.Config, []*unstructured.Unstructured{configMap(ns, "dry")}, apply.Options{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry run created the ConfigMap: %v", err)
	}
}

func TestApplyErrorNamesTheRefusedObjectAndUnwraps(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	objs := []*unstructured.Unstructured{configMap(env.Namespace(t), "first"), configMap("no-such-namespace-apply", "second")}
	err := apply.Apply(ctx, env.Config, objs, apply.Options{})
	var ae *apply.Error
	if !errors.As(err, &ae) || ae.Kind != "ConfigMap" || ae.Namespace != "no-such-namespace-apply" || ae.Name != "second" {
		t.Fatalf("err = %v, want *apply.Error for ConfigMap no-such-namespace-apply/second", err)
	}
	if !apierrors.IsNotFound(err) {
		t.Fatalf("err = %v, want the API server's NotFound through Unwrap", err)
	}
	if err := apply.Apply(ctx, nil, objs, apply.Options{}); err == nil {
		t.Fatal("Apply with a nil rest.Config succeeded")
	}
}
