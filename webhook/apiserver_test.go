package webhook

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ekslink/ekslink/envtest"
)

func TestMain(m *testing.M) { envtest.Main(m) }

// webhookUnderTest is a Handler served over TLS on loopback and registered with the real API
// server through a MutatingWebhookConfiguration scoped to one namespace.
type webhookUnderTest struct {
	h   *Handler
	reg *prometheus.Registry
}

// startWebhook serves a Handler for namespace ns and waits until the API server calls it.
func startWebhook(t *testing.T, env *envtest.Environment, ns string, cfg Config, opts Options) *webhookUnderTest {
	t.Helper()
	return startWebhookWith(t, env, env.Client, ns, cfg, opts, "v1")
}

// startWebhookWith is startWebhook with the Handler's own client and the AdmissionReview versions
// the configuration names.
func startWebhookWith(t *testing.T, env *envtest.Environment, client kubernetes.Interface, ns string, cfg Config, opts Options, reviewVersions ...string) *webhookUnderTest {
	t.Helper()
	ctx := envtest.Context(t)
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	h, err := NewHandler(client, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Ready(); err != nil {
		t.Fatalf("Ready after Start: %v", err)
	}

	cert := envtest.NewServingCert(t)
	mux := http.NewServeMux()
	mux.Handle(MutatePath, h)
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLSCertificate(t)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	// The upstream's deploy/mutatingwebhook.yaml: pod CREATE, failurePolicy Ignore, the
	// skip-pod-identity-webhook objectSelector; a loopback URL and caBundle instead of a Service.
	createSA(t, env, ns, "probe", map[string]string{"eks.amazonaws.com/role-arn": testARN})
	env.RegisterPodWebhook(t, envtest.PodWebhook{
		Name: "pod-identity-webhook-" + ns, URL: srv.URL + MutatePath, CABundle: cert.CAPEM, Namespace: ns,
		ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: SkipPodLabel, Operator: metav1.LabelSelectorOpDoesNotExist,
		}}},
		Probe:          podFor(ns, "probe", "probe"),
		Mutated:        func(p *corev1.Pod) bool { return envValue(p.Spec.Containers[0], EnvRoleARN) == testARN },
		ReviewVersions: reviewVersions,
	})
	return &webhookUnderTest{h: h, reg: reg}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func createSA(t *testing.T, env *envtest.Environment, ns, name string, annotations map[string]string) {
	t.Helper()
	_, err := env.Client.CoreV1().ServiceAccounts(ns).Create(envtest.Context(t),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func podFor(ns, name, sa string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa,
			Containers:         []corev1.Container{{Name: "main", Image: testImage}},
		},
	}
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// tokenVolume returns the pod's projected service-account-token volume of that name.
func tokenVolume(p *corev1.Pod, name string) *corev1.ServiceAccountTokenProjection {
	for _, v := range p.Spec.Volumes {
		if v.Name == name && v.Projected != nil && len(v.Projected.Sources) == 1 {
			return v.Projected.Sources[0].ServiceAccountToken
		}
	}
	return nil
}

// checkIRSA reports how the stored pod differs from an IRSA-mutated one for role.
func checkIRSA(p *corev1.Pod, role string) error {
	c := p.Spec.Containers[0]
	if got := envValue(c, EnvRoleARN); got != role {
		return fmt.Errorf("pod %s: AWS_ROLE_ARN = %q, want %q", p.Name, got, role)
	}
	if got := envValue(c, EnvWebIdentityTokenFile); got != DefaultTokenMountPath+"/token" {
		return fmt.Errorf("pod %s: AWS_WEB_IDENTITY_TOKEN_FILE = %q", p.Name, got)
	}
	tok := tokenVolume(p, "aws-iam-token")
	if tok == nil || tok.Audience != "sts.amazonaws.com" || tok.ExpirationSeconds == nil || *tok.ExpirationSeconds != 86400 || tok.Path != "token" {
		return fmt.Errorf("pod %s: aws-iam-token volume = %+v", p.Name, p.Spec.Volumes)
	}
	for _, m := range c.VolumeMounts {
		if m.Name == "aws-iam-token" && m.MountPath == DefaultTokenMountPath && m.ReadOnly {
			return nil
		}
	}
	return fmt.Errorf("pod %s: no read-only aws-iam-token mount at %s: %+v", p.Name, DefaultTokenMountPath, c.VolumeMounts)
}

func untouched(p *corev1.Pod) error {
	for _, e := range p.Spec.Containers[0].Env {
		if strings.HasPrefix(e.Name, "AWS_") {
			return fmt.Errorf("pod %s has %s", p.Name, e.Name)
		}
	}
	if tokenVolume(p, "aws-iam-token") != nil || tokenVolume(p, DefaultContainerCredentialsVolumeName) != nil {
		return fmt.Errorf("pod %s has a token volume", p.Name)
	}
	return nil
}

// Upstream issues #174 and #264: a pod created right after its annotated service account was
// admitted unmutated when the informer had not delivered the account yet. Here the Handler's
// watch lags 2 s behind the API server, so the pods of 50 back-to-back pairs are admitted before
// the informer has their service account; every stored pod must still be mutated.
func TestAPIServerMutatesPodsCreatedRightAfterTheirServiceAccount(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	lagging, err := laggingWatchClient(env.Config, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w := startWebhookWith(t, env, lagging, ns, Config{}, Options{}, "v1")
	ctx := envtest.Context(t)

	const n = 50
	for i := range n {
		name := fmt.Sprintf("app-%d", i)
		createSA(t, env, ns, name, map[string]string{"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/" + name})
		if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, name, name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		name := fmt.Sprintf("app-%d", i)
		p, err := env.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := checkIRSA(p, "arn:aws:iam::123456789012:role/"+name); err != nil {
			t.Error(err)
		}
	}
	live := counterValue(w.h.metrics.lookups.WithLabelValues("api"))
	mutated := counterValue(w.h.metrics.mutations.WithLabelValues(string(ModeIRSA), resultMutated))
	t.Logf("%d pods created right after their service account: %.0f mutated, %.0f service accounts found only by the live GET (the upstream, without a grace period, left these pods unmutated)", n, mutated, live)
	if mutated < n {
		t.Errorf("mutations_total{irsa,mutated} = %.0f, want at least %d", mutated, n)
	}
	if live < n/2 {
		t.Errorf("only %.0f of %d service accounts came from the live GET: the watch did not lag, so the race was not exercised", live, n)
	}
}

func TestAPIServerLeavesUnconfiguredAndSkippedPodsAlone(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	w := startWebhook(t, env, ns, Config{}, Options{})
	ctx := envtest.Context(t)
	createSA(t, env, ns, "plain", nil)
	createSA(t, env, ns, "annotated", map[string]string{"eks.amazonaws.com/role-arn": testARN})
	createSA(t, env, ns, "broken", map[string]string{"eks.amazonaws.com/role-arn": "not-an-arn"})

	skipped := podFor(ns, "skipped", "annotated")
	skipped.Labels = map[string]string{SkipPodLabel: "true"}
	for _, p := range []*corev1.Pod{podFor(ns, "plain", "plain"), skipped, podFor(ns, "broken", "broken")} {
		stored, err := env.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating pod %s: %v (the webhook must never block a pod)", p.Name, err)
		}
		if err := untouched(stored); err != nil {
			t.Error(err)
		}
	}
	if got := counterValue(w.h.metrics.mutations.WithLabelValues(string(ModeNone), resultInvalid)); got != 1 {
		t.Errorf("mutations_total{none,invalid} = %v, want 1 (the broken role-arn)", got)
	}
	if got := counterValue(w.h.metrics.mutations.WithLabelValues(string(ModeNone), resultNotConfigured)); got != 1 {
		t.Errorf("mutations_total{none,not_configured} = %v, want 1 (the plain service account)", got)
	}

	// The broken annotation is reported where the user looks: a Warning Event on the service
	// account, once however many pods repeat it, and none for a dry run (sideEffects: None).
	if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, "broken-again", "broken"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createSA(t, env, ns, "broken-dry", map[string]string{"eks.amazonaws.com/role-arn": "not-an-arn"})
	if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, "dry", "broken-dry"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := env.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var found []corev1.Event
		for _, ev := range evs.Items {
			if ev.Reason == EventReasonInvalidAnnotation {
				found = append(found, ev)
			}
		}
		if len(found) == 1 {
			ev := found[0]
			sa, err := env.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "broken", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != corev1.EventTypeWarning || ev.InvolvedObject.Kind != "ServiceAccount" || ev.InvolvedObject.Name != "broken" || ev.InvolvedObject.UID != sa.UID ||
				!strings.Contains(ev.Message, `eks.amazonaws.com/role-arn="not-an-arn"`) || !strings.Contains(ev.Message, "pod broken") {
				t.Errorf("event = %+v", ev)
			}
			break
		}
		if len(found) > 1 || time.Now().After(deadline) {
			t.Fatalf("events with reason %s: %+v", EventReasonInvalidAnnotation, found)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Container credentials from the identities file, and IRSA from the pod-identity-webhook
// ConfigMap, both watched: a change to either applies to the next pod.
func TestAPIServerWatchesTheIdentitiesFileAndTheConfigMap(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := envtest.Context(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "identities.json")
	writeFile := func(content string) {
		tmp := filepath.Join(dir, ".tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(`{"identities":[{"namespace":"` + ns + `","serviceAccount":"agent"}]}`)
	cms := env.Client.CoreV1().ConfigMaps(ns)
	_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName},
		Data: map[string]string{ConfigMapKey: `{"` + ns + `/mapped":{"RoleARN":"` + testARN + `","Audience":"sts.amazonaws.com"}}`}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := startWebhook(t, env, ns, Config{}, Options{IdentitiesFile: file, ConfigMapNamespace: ns})
	createSA(t, env, ns, "agent", nil)
	createSA(t, env, ns, "mapped", nil)
	createSA(t, env, ns, "later", nil)

	p, err := env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, "agent", "agent"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok := tokenVolume(p, DefaultContainerCredentialsVolumeName)
	if envValue(p.Spec.Containers[0], EnvContainerCredentialsURI) != DefaultContainerCredentialsFullURI ||
		p.Labels[PodIdentityLabel] != "enabled" || tok == nil || tok.Audience != DefaultContainerCredentialsAudience ||
		*tok.ExpirationSeconds < JitterMinTokenExpiration || *tok.ExpirationSeconds > DefaultTokenExpiration {
		t.Errorf("container-credentials pod as stored: labels %v, env %v, volumes %+v", p.Labels, p.Spec.Containers[0].Env, p.Spec.Volumes)
	}
	if p, err = env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, "mapped", "mapped"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	} else if err := checkIRSA(p, testARN); err != nil {
		t.Error(err)
	}

	// Both sources change: "later" becomes a container-credentials identity and "mapped" loses
	// its mapping.
	writeFile(`{"identities":[{"namespace":"` + ns + `","serviceAccount":"later"}]}`)
	cm, err := cms.Get(ctx, ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data[ConfigMapKey] = `{}`
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		later, err1 := env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, "x", "later"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		mapped, err2 := env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, "y", "mapped"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err1 == nil && err2 == nil && later.Labels[PodIdentityLabel] == "enabled" && untouched(mapped) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: later=%v (%v), mapped=%v (%v)", later, err1, mapped, err2)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A broken identities file keeps the previous identities.
	writeFile(`{"identities":[{"namespace":`)
	deadline = time.Now().Add(20 * time.Second)
	for counterValue(w.h.metrics.reloads.WithLabelValues("identities", "error")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the broken identities file was not read within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if later, err := env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, "x", "later"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil ||
		later.Labels[PodIdentityLabel] != "enabled" {
		t.Errorf("after a broken identities file: %v, %v", later, err)
	}

	// The mapping comes back, then the ConfigMap is deleted: its mappings go with it.
	cm.Data[ConfigMapKey] = `{"` + ns + `/mapped":{"RoleARN":"` + testARN + `"}}`
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	mappedNow := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			p, err := env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, "y", "mapped"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err == nil && (checkIRSA(p, testARN) == nil) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 20s, mapped = %v, want %v (err %v)", !want, want, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	mappedNow(true)
	if err := cms.Delete(ctx, ConfigMapName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	mappedNow(false)
}

// The binary serves at once and reports ready when the cache has synced: admissions that arrive
// while Start runs are answered from live lookups (and race-free under -race).
func TestHandlerServesWhileItsCacheSyncs(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	createSA(t, env, ns, "early", map[string]string{"eks.amazonaws.com/role-arn": testARN})
	h, err := NewHandler(env.Client, Config{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if h.Ready() == nil {
		t.Fatal("ready before Start")
	}
	podJSON, _ := json.Marshal(podFor(ns, "early", "early"))
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"` + ns + `","object":` + string(podJSON) + `}}`
	started := make(chan error, 1)
	go func() { started <- h.Start(envtest.Context(t)) }()
	results := make(chan string, 20)
	for range 20 {
		go func() {
			_, body := post(t, h, "POST", "application/json", review)
			results <- body
		}()
	}
	for range 20 {
		if body := <-results; !strings.Contains(body, `"patch"`) {
			t.Errorf("admission during Start: %s", body)
		}
	}
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if err := h.Ready(); err != nil {
		t.Errorf("Ready after Start: %v", err)
	}
}

// The webhook needs no more than: get/list/watch service accounts, create events, and
// get/list/watch its own ConfigMap by name in its namespace (the informer lists with a
// metadata.name field selector, which RBAC authorizes against resourceNames).
func TestHandlerWorksWithMinimalRBAC(t *testing.T) {
	env := envtest.Shared(t)
	home, ns := env.Namespace(t), env.Namespace(t)
	ctx := envtest.Context(t)
	createSA(t, env, home, "pod-identity-webhook", nil)
	self := envtest.ServiceAccountSubject(home, "pod-identity-webhook")
	env.Grant(t, "", "pod-identity-webhook-"+ns, self, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
	})
	env.Grant(t, home, "pod-identity-webhook", self, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{ConfigMapName}, Verbs: []string{"get", "list", "watch"}},
	})
	if _, err := env.Client.CoreV1().ConfigMaps(home).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName},
		Data: map[string]string{ConfigMapKey: `{"*/mapped":{"RoleARN":"` + testARN + `","Audience":"sts.amazonaws.com"}}`}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	client := env.ClientForToken(t, env.Token(t, home, "pod-identity-webhook", nil, 0))
	startWebhookWith(t, env, client, ns, Config{}, Options{ConfigMapNamespace: home}, "v1")

	createSA(t, env, ns, "annotated", map[string]string{"eks.amazonaws.com/role-arn": testARN})
	createSA(t, env, ns, "mapped", nil)
	createSA(t, env, ns, "broken", map[string]string{"eks.amazonaws.com/token-expiration": "1h", "eks.amazonaws.com/role-arn": testARN})
	for _, sa := range []string{"annotated", "mapped"} {
		p, err := env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, sa, sa), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := checkIRSA(p, testARN); err != nil {
			t.Error(err)
		}
	}
	if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, podFor(ns, "broken", "broken"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := env.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=" + EventReasonInvalidAnnotation})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs.Items) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event recorded with the minimal RBAC: %+v", EventReasonInvalidAnnotation, evs.Items)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The upstream's deploy/mutatingwebhook.yaml registers admissionReviewVersions ["v1beta1"]:
// existing configurations keep working when the image changes.
func TestAPIServerCallsWithV1beta1Reviews(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	startWebhookWith(t, env, env.Client, ns, Config{}, Options{}, "v1beta1")
	createSA(t, env, ns, "app", map[string]string{"eks.amazonaws.com/role-arn": testARN})
	p, err := env.Client.CoreV1().Pods(ns).Create(envtest.Context(t), podFor(ns, "app", "app"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkIRSA(p, testARN); err != nil {
		t.Error(err)
	}
}
