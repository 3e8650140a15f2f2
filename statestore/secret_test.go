package statestore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/statestore"
	"github.com/ekslink/ekslink/statestore/storetest"
)

func TestMain(m *testing.M) { envtest.Main(m) }

func TestSecretConformance(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	n := 0
	storetest.Run(t, func(*testing.T) statestore.Store {
		n++
		return statestore.NewSecret(env.Client, ns, fmt.Sprintf("state-%d", n), statestore.SecretOptions{})
	}, storetest.Options{Writers: 6, Increments: 4})
}

func TestSecretPreservesForeignKeysLabelsAndAnnotations(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := envtest.Context(t)
	secrets := env.Client.CoreV1().Secrets(ns)
	_, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "shared", Labels: map[string]string{"team": "ops"}, Annotations: map[string]string{"note": "keep"}},
		Data:       map[string][]byte{"code": []byte("activation-code"), "other": []byte("x")},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := statestore.NewSecret(env.Client, ns, "shared", statestore.SecretOptions{Labels: map[string]string{"app.kubernetes.io/name": "eks-connector"}})

	doc, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Data) != 0 {
		t.Fatalf("foreign keys loaded as owned: %v", doc.Data)
	}
	v, err := s.Save(ctx, map[string][]byte{"registration.json": []byte("{}"), "old": []byte("o")}, doc.Version)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, map[string][]byte{"registration.json": []byte(`{"v":2}`)}, v); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, map[string][]byte{"code": []byte("mine now")}, ""); !errors.Is(err, statestore.ErrConflict) {
		t.Fatalf("create over existing: %v", err)
	}
	cur, _ := s.Load(ctx)
	if _, err := s.Save(ctx, map[string][]byte{"code": []byte("mine now")}, cur.Version); !errors.Is(err, statestore.ErrForeignKey) {
		t.Fatalf("writing a foreign key: got %v, want ErrForeignKey", err)
	}

	sec, err := secrets.Get(ctx, "shared", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"code": "activation-code", "other": "x", "registration.json": `{"v":2}`}
	if len(sec.Data) != len(want) {
		t.Fatalf("secret data keys %v, want %v", sec.Data, want)
	}
	for k, w := range want {
		if string(sec.Data[k]) != w {
			t.Errorf("data[%s] = %q, want %q", k, sec.Data[k], w)
		}
	}
	if sec.Labels["team"] != "ops" || sec.Labels[statestore.LabelManagedBy] != statestore.ManagedByValue || sec.Labels["app.kubernetes.io/name"] != "eks-connector" {
		t.Errorf("labels %v", sec.Labels)
	}
	if sec.Annotations["note"] != "keep" || sec.Annotations[statestore.AnnotationOwnedKeys] != "registration.json" || sec.Annotations[statestore.AnnotationOwner] == "" {
		t.Errorf("annotations %v", sec.Annotations)
	}
}

func TestSecretStaleResourceVersionConflicts(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := envtest.Context(t)
	s := statestore.NewSecret(env.Client, ns, "state-0", statestore.SecretOptions{})
	v1, err := s.Save(ctx, map[string][]byte{"a": []byte("1")}, "")
	if err != nil {
		t.Fatal(err)
	}
	// Another program edits the Secret (a foreign key): our stale version must not win.
	sec, _ := env.Client.CoreV1().Secrets(ns).Get(ctx, "state-0", metav1.GetOptions{})
	sec.Data["theirs"] = []byte("t")
	if _, err := env.Client.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Save(ctx, map[string][]byte{"a": []byte("2")}, v1)
	var ce *statestore.ConflictError
	if !errors.As(err, &ce) || ce.Actual == "" || ce.Actual == v1 {
		t.Fatalf("stale save: got %v, want ConflictError naming the current resourceVersion", err)
	}
}

func TestSecretWorksWithRBACLimitedToTheNamedSecret(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := envtest.Context(t)
	env.CreateServiceAccount(t, ns, "eks-connector")
	// The manifests create the Secret empty: a resourceNames rule cannot grant create.
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "eks-connector-state-0"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "eks-connector-state-1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.Grant(t, ns, "state-writer", envtest.ServiceAccountSubject(ns, "eks-connector"), []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "update"},
		ResourceNames: []string{"eks-connector-state-0"},
	}})
	client := env.ClientForToken(t, env.Token(t, ns, "eks-connector", nil, 0))

	s := statestore.NewSecret(client, ns, "eks-connector-state-0", statestore.SecretOptions{})
	doc, err := s.Load(ctx)
	if err != nil {
		t.Fatalf("Load with named-secret RBAC: %v", err)
	}
	v, err := s.Save(ctx, map[string][]byte{"registration.json": []byte("{}")}, doc.Version)
	if err != nil {
		t.Fatalf("Save with named-secret RBAC: %v", err)
	}
	if _, err := s.Save(ctx, map[string][]byte{"registration.json": []byte(`{"n":1}`)}, v); err != nil {
		t.Fatal(err)
	}

	other := statestore.NewSecret(client, ns, "eks-connector-state-1", statestore.SecretOptions{})
	if _, err := other.Load(ctx); !apierrors.IsForbidden(errors.Unwrap(err)) {
		t.Fatalf("reading a Secret outside resourceNames: got %v, want Forbidden", err)
	}
}

func BenchmarkSecretSave(b *testing.B) {
	env := envtest.Shared(b)
	ns := env.Namespace(b)
	s := statestore.NewSecret(env.Client, ns, "bench", statestore.SecretOptions{})
	ctx := context.Background()
	data := map[string][]byte{"registration.json": make([]byte, 4096)}
	v := ""
	for b.Loop() {
		var err error
		if v, err = s.Save(ctx, data, v); err != nil {
			b.Fatal(err)
		}
	}
}
