package webhook

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ekslink/ekslink/envtest"
)

// fakeClock is an injectable clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

const selfSvc = "pod-identity-webhook"

// selfCertsSetup serves a Handler with a SelfCerts certificate behind a Service-based webhook
// configuration, the way a Deployment does: the API server resolves the Service (ExternalName
// localhost, since the test control plane has no kube-proxy), dials it with TLS server name
// <svc>.<ns>.svc (k8s.io/apiserver pkg/util/webhook/client.go) and verifies with the caBundle
// SelfCerts patched in. The configuration starts with no caBundle, as rendered.
func selfCertsSetup(t *testing.T, env *envtest.Environment, ns string, clock *fakeClock) (*SelfCerts, *admissionregistrationv1.MutatingWebhookConfiguration) {
	t.Helper()
	ctx := envtest.Context(t)
	h, err := NewHandler(env.Client, Config{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sc := newTestSelfCerts(t, env, ns, clock)
	mux := http.NewServeMux()
	mux.Handle(MutatePath, h)
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{GetCertificate: sc.GetCertificate}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())

	if _, err := env.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: selfSvc},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ignore := admissionregistrationv1.Ignore
	none := admissionregistrationv1.SideEffectClassNone
	path, port32 := MutatePath, int32(port)
	other := "https://other.example.invalid/mutate"
	hook := func(name string, cc admissionregistrationv1.WebhookClientConfig) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name: name, ClientConfig: cc,
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			FailurePolicy: &ignore, SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
		}
	}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "self-" + ns},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			hook("iam-for-pods.amazonaws.com", admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{Namespace: ns, Name: selfSvc, Path: &path, Port: &port32}}),
			// Another webhook in the same configuration: its caBundle is not ours to set.
			hook("other.example.com", admissionregistrationv1.WebhookClientConfig{URL: &other}),
		},
	}
	mwcs := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if _, err := mwcs.Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mwcs.Delete(ctx, mwc.Name, metav1.DeleteOptions{}) })
	createSA(t, env, ns, "probe", map[string]string{"eks.amazonaws.com/role-arn": testARN})
	return sc, mwc
}

func newTestSelfCerts(t *testing.T, env *envtest.Environment, ns string, clock *fakeClock) *SelfCerts {
	t.Helper()
	sc, err := NewSelfCerts(env.Client, types.NamespacedName{Namespace: ns, Name: "pod-identity-webhook-certs"},
		types.NamespacedName{Namespace: ns, Name: selfSvc}, SelfCertsOptions{WebhookConfigName: "self-" + ns, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// waitMutated dry-runs a pod until the API server returns it mutated (it loads webhook
// configurations asynchronously).
func waitMutated(t *testing.T, env *envtest.Environment, ns string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := env.Client.CoreV1().Pods(ns).Create(envtest.Context(t), podFor(ns, "probe", "probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && envValue(p.Spec.Containers[0], EnvRoleARN) == testARN {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server does not mutate pods through the self-managed certificate after 30s (last error %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *SelfCerts) servingLeaf(t *testing.T) []byte {
	t.Helper()
	c, err := s.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.Certificate[0]
}

// dialVerified connects to addr as the API server does (server name <svc>.<ns>.svc, roots from
// the caBundle) and returns the served leaf.
func dialVerified(t *testing.T, addr, serverName string, caBundle []byte) []byte {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caBundle) {
		t.Fatal("caBundle holds no certificate")
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: serverName})
	if err != nil {
		t.Fatalf("TLS to the webhook with the caBundle: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw
}

func TestSelfCertsFirstStartSecondInstanceAndRotation(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := envtest.Context(t)
	realNow := time.Now()
	// Start 250 days back: the serving certificate (365 days) then passes 2/3 of its life when
	// the clock comes to the present, and every certificate is valid in real time for the API
	// server and TLS clients.
	clock := &fakeClock{now: realNow.Add(-250 * 24 * time.Hour)}
	sc, mwc := selfCertsSetup(t, env, ns, clock)

	// First start: the Secret is created and the caBundle patched in.
	if err := sc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "pod-identity-webhook-certs", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the first Sync created no Secret: %v", err)
	}
	got, err := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mwc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Webhooks[0].ClientConfig.CABundle, sec.Data[SecretKeyCABundle]) {
		t.Fatalf("caBundle of the webhook pointing at the Service = %q, want the Secret's ca.crt", got.Webhooks[0].ClientConfig.CABundle)
	}
	if len(got.Webhooks[1].ClientConfig.CABundle) != 0 {
		t.Errorf("the webhook not pointing at our Service got a caBundle")
	}
	waitMutated(t, env, ns)

	// A second instance adopts the Secret: same CA and serving certificate, no write.
	sc2 := newTestSelfCerts(t, env, ns, clock)
	if err := sc2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	sec2, _ := env.Client.CoreV1().Secrets(ns).Get(ctx, "pod-identity-webhook-certs", metav1.GetOptions{})
	if sec2.ResourceVersion != sec.ResourceVersion || !bytes.Equal(sc2.CABundle(), sc.CABundle()) || !bytes.Equal(sc2.servingLeaf(t), sc.servingLeaf(t)) {
		t.Fatalf("the second instance did not adopt the Secret (resourceVersion %s -> %s)", sec.ResourceVersion, sec2.ResourceVersion)
	}

	// Rotation: past 2/3 of the serving certificate's life a new one is issued by the same CA,
	// served without a restart; a client holding the caBundle verifies both.
	names := sc.DNSNames()
	addr := serverAddr(t, sc)
	before := dialVerified(t, addr, names[0], sc.CABundle())
	caBefore := sc.CABundle()
	clock.Set(realNow)
	if err := sc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	after := dialVerified(t, addr, names[0], caBefore)
	if bytes.Equal(before, after) {
		t.Fatal("past 2/3 of its life the serving certificate was not replaced")
	}
	if !bytes.Equal(sc.CABundle(), caBefore) {
		t.Error("a serving certificate rotation changed the CA")
	}
	waitMutated(t, env, ns)
}

// serverAddr is the loopback address of the httptest server serving sc (set by selfCertsSetup
// through the Service's port in the configuration).
func serverAddr(t *testing.T, sc *SelfCerts) string {
	t.Helper()
	mwc, err := sc.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(envtest.Context(t), sc.o.WebhookConfigName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(int(*mwc.Webhooks[0].ClientConfig.Service.Port))
}
