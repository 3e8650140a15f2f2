package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/webhook"
)

// With --cert-secret and --webhook-config-name there is no certificate step at all: the binary
// creates the Secret, sets the caBundle of the configuration's webhook that points at
// --namespace/--service-name, and the real API server calls it through the Service (ExternalName
// localhost: the test control plane has no kube-proxy) and mutates a pod.
func TestSelfManagedCertificates(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := envtest.Context(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	writeKubeconfig(t, env, kubeconfig)
	port, metricsPort := freePort(t), freePort(t)

	if _, err := env.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "pod-identity-webhook"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ignore, none := admissionregistrationv1.Ignore, admissionregistrationv1.SideEffectClassNone
	path, port32 := webhook.MutatePath, int32(port)
	mwcs := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if _, err := mwcs.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-identity-webhook-" + ns},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "iam-for-pods.amazonaws.com",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: ns, Name: "pod-identity-webhook", Path: &path, Port: &port32}},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			FailurePolicy: &ignore, SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mwcs.Delete(context.Background(), "pod-identity-webhook-"+ns, metav1.DeleteOptions{}) })
	role := "arn:aws:iam::111122223333:role/self"
	if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app",
		Annotations: map[string]string{"eks.amazonaws.com/role-arn": role}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	root := newRootCommand()
	root.SetArgs([]string{"--kubeconfig=" + kubeconfig, "--cert-secret=" + ns + "/pod-identity-webhook-certs",
		"--webhook-config-name=pod-identity-webhook-" + ns, "--namespace=" + ns, "--service-name=pod-identity-webhook",
		"--port=" + strconv.Itoa(port), "--metrics-port=" + strconv.Itoa(metricsPort)})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "main", Image: "public.ecr.aws/docker/library/busybox:stable"}}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && len(p.Spec.Containers[0].Env) > 0 && p.Spec.Containers[0].Env[0].Value == role {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the command exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server does not mutate pods through the self-managed certificate after 30s (last error %v, pod env %v)", err, p.Spec.Containers[0].Env)
		}
		time.Sleep(100 * time.Millisecond)
	}
	sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "pod-identity-webhook-certs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mwc, err := mwcs.Get(ctx, "pod-identity-webhook-"+ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mwc.Webhooks[0].ClientConfig.CABundle, sec.Data[webhook.SecretKeyCABundle]) {
		t.Error("the caBundle is not the Secret's ca.crt")
	}
	// The upstream's certificate manager metric (pkg/cert/request.go), here for the self-managed
	// certificate's rotations.
	if code, body := get(http.DefaultClient, "http://127.0.0.1:"+strconv.Itoa(metricsPort)+"/metrics"); code != 200 ||
		!strings.Contains(body, "# TYPE certificate_manager_server_rotation_seconds histogram") {
		t.Errorf("/metrics (%d) lacks certificate_manager_server_rotation_seconds", code)
	}
}

func TestCertSecretFlagChecks(t *testing.T) {
	for args, want := range map[string]string{
		"--cert-secret=ns/s --tls-cert=/a":                  "mutually exclusive",
		"--cert-secret=ns/s --tls-key=/a":                   "mutually exclusive",
		"--cert-secret=noslash":                             "want <namespace>/<name>",
		"--in-cluster=false --webhook-config-name=x":        "needs --cert-secret",
		"--in-cluster=false --service-account-lookup=cache": "want cache-first or live",
	} {
		root := newRootCommand()
		root.SetArgs(strings.Fields(args))
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", args, err, want)
		}
	}
}
