package webhook

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/podidentity/association"
)

// A user creates an association (podidentity/association, as `ekslink pod-identity association
// create` does) and a pod, nothing else: the webhook, granted only the one associations ConfigMap
// by name beside its usual service-account read, mutates the pod for container credentials; the
// identities file still counts (the union of both); deleting the association stops new pods
// being mutated.
func TestAPIServerMutatesPodsOfAssociatedServiceAccounts(t *testing.T) {
	env := envtest.Shared(t)
	home, ns := env.Namespace(t), env.Namespace(t)
	ctx := envtest.Context(t)
	assocOpts := association.Options{Namespace: home, Name: "assoc"}
	createSA(t, env, home, "pod-identity-webhook", nil)
	self := envtest.ServiceAccountSubject(home, "pod-identity-webhook")
	env.Grant(t, "", "pod-identity-webhook-"+ns, self, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
	})
	env.Grant(t, home, "pod-identity-webhook", self, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"assoc"}, Verbs: []string{"get", "list", "watch"}},
	})
	file := filepath.Join(t.TempDir(), "identities.json")
	if err := os.WriteFile(file, []byte(`{"identities":[{"namespace":"`+ns+`","serviceAccount":"fromfile"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	client := env.ClientForToken(t, env.Token(t, home, "pod-identity-webhook", nil, 0))
	// The ConfigMap does not exist yet when the webhook starts: the cache still syncs.
	w := startWebhookWith(t, env, client, ns, Config{}, Options{IdentitiesFile: file, Associations: &assocOpts}, "v1")

	store := association.NewStore(env.Client, assocOpts)
	if _, err := store.Create(ctx, association.Association{Namespace: ns, ServiceAccount: "app", RoleARN: testARN}); err != nil {
		t.Fatal(err)
	}
	createSA(t, env, ns, "app", nil)
	createSA(t, env, ns, "fromfile", nil)
	mutated := func(sa string, want bool) bool {
		p, err := env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, "x", sa), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatal(err)
		}
		got := p.Labels[PodIdentityLabel] == "enabled" && envValue(p.Spec.Containers[0], EnvContainerCredentialsURI) == DefaultContainerCredentialsFullURI
		return got == want
	}
	waitUntil(t, "the association reaches the webhook", func() bool { return mutated("app", true) })

	p, err := env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, "app", "app"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok := tokenVolume(p, DefaultContainerCredentialsVolumeName)
	if envValue(p.Spec.Containers[0], EnvContainerCredentialsURI) != DefaultContainerCredentialsFullURI ||
		envValue(p.Spec.Containers[0], EnvContainerAuthTokenFile) == "" ||
		p.Labels[PodIdentityLabel] != "enabled" || tok == nil || tok.Audience != DefaultContainerCredentialsAudience {
		t.Errorf("associated pod as stored: labels %v, env %v, volumes %+v", p.Labels, p.Spec.Containers[0].Env, p.Spec.Volumes)
	}
	if !mutated("fromfile", true) {
		t.Error("the identities file's service account is not mutated beside the associations")
	}
	if got := counterValue(w.h.metrics.reloads.WithLabelValues("associations", "ok")); got == 0 {
		t.Error("no associations reload counted")
	}

	if _, err := store.Delete(ctx, ns, "app"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the deleted association stops mutations", func() bool { return mutated("app", false) })
	if !mutated("fromfile", true) {
		t.Error("the identities file's service account lost after the association was deleted")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
