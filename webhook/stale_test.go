package webhook

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
)

// A service account whose role-arn annotation is changed, removed or added right before a pod
// is created, with --service-account-lookup=live (Options.LookupLive): the informer cache still holds the old account (the Handler's watch lags 2 s here,
// as on a busy cluster), yet every stored pod must have the account's new configuration. The
// upstream serves such pods from its cache (pkg/cache/cache.go Get) and gives them the old role,
// or none, or a role that was just withdrawn.
func TestAPIServerUsesServiceAccountChangesMadeRightBeforeThePod(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := envtest.Context(t)
	const n = 20
	role := func(i int, v string) string { return fmt.Sprintf("arn:aws:iam::123456789012:role/app-%d-%s", i, v) }
	for i := range n {
		createSA(t, env, ns, fmt.Sprintf("changed-%d", i), map[string]string{"eks.amazonaws.com/role-arn": role(i, "old")})
		createSA(t, env, ns, fmt.Sprintf("removed-%d", i), map[string]string{"eks.amazonaws.com/role-arn": role(i, "old")})
		createSA(t, env, ns, fmt.Sprintf("added-%d", i), nil)
	}
	lagging, err := laggingWatchClient(env.Config, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Start syncs the cache with every account as created above (the initial LIST is not lagged).
	w := startWebhookWith(t, env, lagging, ns, Config{}, Options{LookupLive: true}, "v1")

	sas := env.Client.CoreV1().ServiceAccounts(ns)
	update := func(name string, ann map[string]string) {
		t.Helper()
		sa, err := sas.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sa.Annotations = ann
		if _, err := sas.Update(ctx, sa, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create := func(name string) *corev1.Pod {
		t.Helper()
		p, err := env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, name, name), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for i := range n {
		changed, removed, added := fmt.Sprintf("changed-%d", i), fmt.Sprintf("removed-%d", i), fmt.Sprintf("added-%d", i)
		update(changed, map[string]string{"eks.amazonaws.com/role-arn": role(i, "new")})
		if err := checkIRSA(create(changed), role(i, "new")); err != nil {
			t.Errorf("role changed right before the pod: %v", err)
		}
		update(removed, nil)
		if err := untouched(create(removed)); err != nil {
			t.Errorf("role removed right before the pod: %v", err)
		}
		update(added, map[string]string{"eks.amazonaws.com/role-arn": role(i, "new")})
		if err := checkIRSA(create(added), role(i, "new")); err != nil {
			t.Errorf("role added right before the pod: %v", err)
		}
	}
	t.Logf("%d back-to-back changes of each kind: %.0f lookups answered by the API server, %.0f by the cache",
		n, counterValue(w.h.metrics.lookups.WithLabelValues("api")), counterValue(w.h.metrics.lookups.WithLabelValues("cache_fallback")))
}

// The default (cache first) is the upstream's trade: the cache answers when it has the account, so a
// change made right before the pod is missed (this is what the default avoids), while an account
// the cache does not have yet is still read live.
func TestDefaultLookupServesTheCachedAccount(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := envtest.Context(t)
	old, updated := "arn:aws:iam::123456789012:role/old", "arn:aws:iam::123456789012:role/new"
	createSA(t, env, ns, "app", map[string]string{"eks.amazonaws.com/role-arn": old})
	lagging, err := laggingWatchClient(env.Config, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w := startWebhookWith(t, env, lagging, ns, Config{}, Options{}, "v1")
	sa, err := env.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa.Annotations["eks.amazonaws.com/role-arn"] = updated
	if _, err := env.Client.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, "app", "app"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkIRSA(p, old); err != nil {
		t.Errorf("cache first, 2 s behind: want the cached (old) role: %v", err)
	}
	createSA(t, env, ns, "fresh", map[string]string{"eks.amazonaws.com/role-arn": updated})
	p, err = env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, "fresh", "fresh"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkIRSA(p, updated); err != nil {
		t.Errorf("an account the cache does not have yet must be read live: %v", err)
	}
	if c, a := counterValue(w.h.metrics.lookups.WithLabelValues("cache")), counterValue(w.h.metrics.lookups.WithLabelValues("api")); c != 1 || a != 2 {
		t.Errorf("lookups: cache %.0f (want 1: app), api %.0f (want 2: the probe's and fresh's accounts, created after the cache synced)", c, a)
	}
}
