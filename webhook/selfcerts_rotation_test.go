package webhook

import (
	"bytes"
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ekslink/ekslink/envtest"
)

// Two replicas rotate at the same moment: the one whose update loses (resourceVersion
// precondition, 409 from the real API server) re-reads and serves the winner's certificate.
func TestSelfCertsConflictOnTheSecretIsResolvedByReReading(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := envtest.Context(t)
	realNow := time.Now()
	clock := &fakeClock{now: realNow.Add(-250 * 24 * time.Hour)}
	sc, _ := selfCertsSetup(t, env, ns, clock)
	winner := newTestSelfCerts(t, env, ns, clock)
	if err := sc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Set(realNow)
	writes := 0
	sc.beforeWrite = func() {
		writes++
		if writes == 1 { // the winner writes between our read and our update
			if err := winner.Sync(ctx); err != nil {
				t.Error(err)
			}
		}
	}
	if err := sc.Sync(ctx); err != nil {
		t.Fatalf("Sync after losing the race: %v", err)
	}
	sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "pod-identity-webhook-certs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	won, err := parseKeyPair(sec.Data[SecretKeyCert], sec.Data[SecretKeyKey])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sc.servingLeaf(t), won.cert.Raw) || !bytes.Equal(winner.servingLeaf(t), won.cert.Raw) {
		t.Fatal("after the conflict the replicas serve different certificates, or not the Secret's")
	}
	if writes != 1 {
		t.Errorf("the loser tried %d writes; after re-reading the winner's fresh certificate it should write none", writes)
	}
}

// Past 2/3 of the CA's life a new CA signs a new serving certificate; the caBundle holds the new
// CA and the old one (still valid) so that replicas still serving the old certificate verify.
func TestSelfCertsCARotationOverlaps(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := envtest.Context(t)
	realNow := time.Now()
	clock := &fakeClock{now: realNow.Add(-7 * 365 * 24 * time.Hour)}
	sc, mwc := selfCertsSetup(t, env, ns, clock)
	if err := sc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	oldCAs, _ := parseCerts(sc.CABundle())
	clock.Set(realNow)
	if err := sc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cas, _ := parseCerts(sc.CABundle())
	if len(oldCAs) != 1 || len(cas) != 2 || !cas[1].Equal(oldCAs[0]) || cas[0].Equal(oldCAs[0]) {
		t.Fatalf("caBundle after the CA rotation has %d CAs (before: %d), want the new CA then the old one", len(cas), len(oldCAs))
	}
	got, err := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mwc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Webhooks[0].ClientConfig.CABundle, sc.CABundle()) {
		t.Error("the webhook configuration does not carry both CAs")
	}
	addr := serverAddr(t, sc)
	if leaf := dialVerified(t, addr, sc.DNSNames()[1], sc.CABundle()); !bytes.Equal(leaf, sc.servingLeaf(t)) {
		t.Error("the served certificate is not the new one")
	}
	waitMutated(t, env, ns)

	// Once the old CA has expired it leaves the bundle.
	clock.Set(realNow.Add(3*365*24*time.Hour + 48*time.Hour))
	data, why, err := sc.plan(map[string][]byte{SecretKeyCABundle: sc.CABundle(), SecretKeyCAKey: mustSecret(t, env, ns).Data[SecretKeyCAKey]})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := parseCerts(data[SecretKeyCABundle]); len(n) != 1 || why == "" {
		t.Errorf("after the old CA expired the bundle has %d CAs (%s), want 1", len(n), why)
	}
}

func mustSecret(t *testing.T, env *envtest.Environment, ns string) *corev1.Secret {
	t.Helper()
	s, err := env.Client.CoreV1().Secrets(ns).Get(envtest.Context(t), "pod-identity-webhook-certs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The RBAC docs/webhook.md lists is enough: get/update on the Secret by name, create on secrets
// (RBAC cannot restrict create by name), get/update on the one webhook configuration by name.
func TestSelfCertsRunWithMinimalRBAC(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := envtest.Context(t)
	realNow := time.Now()
	clock := &fakeClock{now: realNow.Add(-250 * 24 * time.Hour)}
	_, mwc := selfCertsSetup(t, env, ns, clock)
	env.CreateServiceAccount(t, ns, "webhook")
	sub := envtest.ServiceAccountSubject(ns, "webhook")
	env.Grant(t, ns, "webhook-secret", sub, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "update"}, ResourceNames: []string{"pod-identity-webhook-certs"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
	})
	env.Grant(t, "", "webhook-config-"+ns, sub, []rbacv1.PolicyRule{
		{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, Verbs: []string{"get", "update"}, ResourceNames: []string{mwc.Name}},
	})
	client := env.ClientForToken(t, env.Token(t, ns, "webhook", nil, time.Hour))
	sc, err := NewSelfCerts(client, types.NamespacedName{Namespace: ns, Name: "pod-identity-webhook-certs"},
		types.NamespacedName{Namespace: ns, Name: selfSvc}, SelfCertsOptions{WebhookConfigName: mwc.Name, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Sync(ctx); err != nil {
		t.Fatalf("first sync (create, caBundle) with the minimal RBAC: %v", err)
	}
	clock.Set(realNow.Add(7 * 365 * 24 * time.Hour)) // both certificates due: update, new caBundle
	if err := sc.Sync(ctx); err != nil {
		t.Fatalf("rotation with the minimal RBAC: %v", err)
	}
	got, err := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mwc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := parseCerts(got.Webhooks[0].ClientConfig.CABundle); len(n) != 2 {
		t.Errorf("caBundle after the CA rotation has %d CAs, want 2", len(n))
	}
}

// A new CA is published in the caBundle before it signs anything: right after the CA rotation
// the serving certificate of the old CA stays (the API server may not have loaded the new
// caBundle yet); after CAPropagationDelay the new CA signs a new one.
func TestSelfCertsNewCASignsOnlyAfterPropagation(t *testing.T) {
	t0 := time.Now()
	clock := &fakeClock{now: t0}
	sc, err := NewSelfCerts(nil, types.NamespacedName{Namespace: "ns", Name: "s"}, types.NamespacedName{Namespace: "ns", Name: "svc"}, SelfCertsOptions{
		CAValidity: 30 * time.Hour, ServingValidity: 10 * time.Hour, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	step := func(at time.Duration, data map[string][]byte) (map[string][]byte, string) {
		t.Helper()
		clock.Set(t0.Add(at))
		out, why, err := sc.plan(data)
		if err != nil {
			t.Fatal(err)
		}
		return out, why
	}
	d0, _ := step(0, nil)
	d1, why := step(18*time.Hour, d0) // serving due (2/3 of 10 h), CA not (2/3 of 30 h)
	if bytes.Equal(d1[SecretKeyCert], d0[SecretKeyCert]) || !bytes.Equal(d1[SecretKeyCAKey], d0[SecretKeyCAKey]) {
		t.Fatalf("at 18 h: %s", why)
	}
	d2, why := step(20*time.Hour+2*time.Minute, d1) // CA due
	if cas, _ := parseCerts(d2[SecretKeyCABundle]); len(cas) != 2 || bytes.Equal(d2[SecretKeyCAKey], d1[SecretKeyCAKey]) {
		t.Fatalf("at the CA's 2/3: %d CAs in the bundle (%s), want a new CA next to the old", len(cas), why)
	}
	if !bytes.Equal(d2[SecretKeyCert], d1[SecretKeyCert]) {
		t.Fatal("a serving certificate of the new CA was issued before the API server could load the caBundle naming it")
	}
	d3, why := step(20*time.Hour+2*time.Minute+CAPropagationDelay, d2)
	newCA, _ := parseCerts(d3[SecretKeyCABundle])
	serving, err := parseKeyPair(d3[SecretKeyCert], d3[SecretKeyKey])
	if err != nil || serving.cert.CheckSignatureFrom(newCA[0]) != nil {
		t.Fatalf("after the propagation delay the serving certificate is not the new CA's (%s, %v)", why, err)
	}
}

// Run re-checks on its own: once the clock passes the serving certificate's 2/3, the running
// server serves the new certificate with no restart and no call from the test.
func TestSelfCertsRunRotatesWithoutRestart(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := envtest.Context(t)
	realNow := time.Now()
	clock := &fakeClock{now: realNow.Add(-250 * 24 * time.Hour)}
	sc, _ := selfCertsSetup(t, env, ns, clock)
	sc.o.CheckPeriod = 50 * time.Millisecond
	if err := sc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	addr := serverAddr(t, sc)
	before := dialVerified(t, addr, sc.DNSNames()[0], sc.CABundle())
	done := make(chan struct{})
	runCtx, cancel := context.WithCancel(ctx)
	go func() { sc.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	clock.Set(realNow)
	deadline := time.Now().Add(10 * time.Second)
	for bytes.Equal(dialVerified(t, addr, sc.DNSNames()[0], sc.CABundle()), before) {
		if time.Now().After(deadline) {
			t.Fatal("Run did not rotate the serving certificate within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitMutated(t, env, ns)
}
