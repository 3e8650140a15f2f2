package webhook

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ekslink/ekslink/envtest"
)

// BenchmarkMutate is the mutation alone for a typical IRSA pod (the admission benchmark of issue
// 17, with the HTTP round trip, is separate).
func BenchmarkMutate(b *testing.B) {
	pod := testPod(withEnv("LOG_LEVEL", "info"))
	sa := testSA("eks.amazonaws.com/role-arn", testARN)
	cfg := Config{Region: "eu-west-1", RegionalSTS: true}
	b.ReportAllocs()
	for b.Loop() {
		m, err := Mutate(pod, sa, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.PatchJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

// loadPod is a pod as a Deployment creates it: labels, owner, resources, probes, a few env vars.
func loadPod(ns, sa string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-7d9c6b5f4-", Namespace: ns,
			Labels:      map[string]string{"app": "web", "pod-template-hash": "7d9c6b5f4"},
			Annotations: map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-12-07T00:00:00Z"}},
		Spec: corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{
			Name: "web", Image: "public.ecr.aws/nginx/nginx:1.27",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			Env:   []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "BUCKET", Value: "my-bucket"}},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}},
		}}},
	}
}

// captureReview returns the AdmissionReview body the real API server sends a webhook for pod: its
// admission chain has already added the defaults and the kube-api-access volume.
func captureReview(t testing.TB, env *envtest.Environment, ns string, pod *corev1.Pod) []byte {
	t.Helper()
	var mu sync.Mutex
	var last []byte
	capture := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			http.Error(w, "not a review", http.StatusBadRequest)
			return
		}
		mu.Lock()
		last = body
		mu.Unlock()
		pt := admissionv1.PatchTypeJSONPatch
		out, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: &admissionv1.AdmissionResponse{
			UID: review.Request.UID, Allowed: true, PatchType: &pt, Patch: []byte(`[{"op":"add","path":"/metadata/labels/captured","value":"yes"}]`)}})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
	cert := envtest.NewServingCert(t)
	srv := httptest.NewUnstartedServer(capture)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLSCertificate(t)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	env.RegisterPodWebhook(t, envtest.PodWebhook{Name: "capture-" + ns, URL: srv.URL + "/capture", CABundle: cert.CAPEM, Namespace: ns,
		Probe: pod, Mutated: func(p *corev1.Pod) bool { return p.Labels["captured"] == "yes" }})
	mu.Lock()
	defer mu.Unlock()
	if last == nil {
		t.Fatal("no AdmissionReview captured")
	}
	return last
}

// bareAllow is the least an admission webhook can do: decode the AdmissionReview and allow it.
func bareAllow(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	out, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// admissionBench serves an AdmissionReview the real API server sent for an IRSA pod, whose
// service account the Handler has in its informer cache.
func admissionBench(b *testing.B) (*Handler, []byte) {
	env := envtest.Shared(b)
	ns := env.Namespace(b)
	ctx := envtest.Context(b)
	if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web",
		Annotations: map[string]string{"eks.amazonaws.com/role-arn": testARN}}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	body := captureReview(b, env, ns, loadPod(ns, "web"))
	h, err := NewHandler(env.Client, Config{Region: "us-west-2", RegionalSTS: true}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := h.Start(ctx); err != nil {
		b.Fatal(err)
	}
	return h, body
}

func serveReview(b *testing.B, h http.Handler, body []byte, wantPatch bool) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, MutatePath, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK || wantPatch != bytes.Contains(w.Body.Bytes(), []byte(`"patch"`)) {
			b.Fatalf("status %d, body %s", w.Code, w.Body.Bytes())
		}
	}
}

// BenchmarkHandler is one admission of an IRSA pod through ServeHTTP (no network): decoding the
// review and the pod, the cached service account, the mutation, the patch and the response.
func BenchmarkHandler(b *testing.B) {
	h, body := admissionBench(b)
	serveReview(b, h, body, true)
}

// BenchmarkBareAdmission is the same review through a handler that only decodes it and allows it
// (the baseline of the load test).
func BenchmarkBareAdmission(b *testing.B) {
	_, body := admissionBench(b)
	serveReview(b, http.HandlerFunc(bareAllow), body, false)
}
