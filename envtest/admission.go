package envtest

import (
	"context"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodWebhook describes a mutating admission webhook for pod CREATE that RegisterPodWebhook
// registers.
type PodWebhook struct {
	// Name of the MutatingWebhookConfiguration (cluster-scoped: make it unique per test).
	Name string
	// URL the API server calls (https, e.g. a loopback server with a NewServingCert certificate).
	URL string
	// CABundle verifies the server's certificate.
	CABundle []byte
	// Namespace limits the webhook to pods of this namespace, so that tests sharing a control
	// plane do not see each other's webhooks.
	Namespace string
	// ObjectSelector selects pods (optional).
	ObjectSelector *metav1.LabelSelector
	// Probe is a pod that the webhook mutates; RegisterPodWebhook dry-runs it until Mutated
	// reports true, since the API server loads webhook configurations asynchronously.
	Probe *corev1.Pod
	// Mutated reports whether the dry-run pod came back mutated.
	Mutated func(*corev1.Pod) bool
	// ReviewVersions are the AdmissionReview versions the webhook accepts (default v1).
	ReviewVersions []string
}

// RegisterPodWebhook creates the webhook's configuration (failurePolicy Ignore, sideEffects None),
// waits until the API server calls it, and deletes it at cleanup.
func (e *Environment) RegisterPodWebhook(t testing.TB, w PodWebhook) {
	t.Helper()
	ctx := Context(t)
	if len(w.ReviewVersions) == 0 {
		w.ReviewVersions = []string{"v1"}
	}
	ignore := admissionregistrationv1.Ignore
	none := admissionregistrationv1.SideEffectClassNone
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: w.Name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "pod-webhook.envtest.ekslink.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &w.URL, CABundle: w.CABundle},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			FailurePolicy:           &ignore,
			SideEffects:             &none,
			AdmissionReviewVersions: w.ReviewVersions,
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": w.Namespace}},
			ObjectSelector:          w.ObjectSelector,
		}},
	}
	mwcs := e.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if _, err := mwcs.Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("envtest: creating MutatingWebhookConfiguration %s: %v", w.Name, err)
	}
	t.Cleanup(func() { _ = mwcs.Delete(context.Background(), w.Name, metav1.DeleteOptions{}) })

	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := e.Client.CoreV1().Pods(w.Namespace).Create(ctx, w.Probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && w.Mutated(p) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("envtest: the API server does not call webhook %s after 30s (last error %v)", w.URL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
