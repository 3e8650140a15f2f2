package manifest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The registration is the upstream's (deploy/mutatingwebhook.yaml of
// aws/amazon-eks-pod-identity-webhook): pods CREATE on /mutate, failurePolicy Ignore, sideEffects
// None, the skip label's objectSelector; AdmissionReview v1.
func TestWebhookConfigurationIsTheUpstreams(t *testing.T) {
	objs, err := RenderWebhook(WebhookOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, fmt.Sprintf("%T", o))
	}
	want := []string{"*v1.Namespace", "*v1.ServiceAccount", "*v1.Secret", "*v1.Role", "*v1.RoleBinding", "*v1.ClusterRole",
		"*v1.ClusterRoleBinding", "*v1.Service", "*v1.Deployment", "*v1.MutatingWebhookConfiguration"}
	if !slices.Equal(kinds, want) {
		t.Errorf("objects %v, want %v", kinds, want)
	}
	mwc := find[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs)
	w := mwc.Webhooks[0]
	svc := w.ClientConfig.Service
	if mwc.Name != "pod-identity-webhook" || w.Name != "pod-identity-webhook.amazonaws.com" || *w.FailurePolicy != admissionregistrationv1.Ignore ||
		*w.SideEffects != admissionregistrationv1.SideEffectClassNone || !slices.Equal(w.AdmissionReviewVersions, []string{"v1"}) ||
		svc.Name != "pod-identity-webhook" || svc.Namespace != "pod-identity-webhook" || *svc.Path != "/mutate" || *svc.Port != 443 ||
		len(w.ClientConfig.CABundle) != 0 {
		t.Errorf("webhook %+v", w)
	}
	r := w.Rules[0]
	if !slices.Equal(r.Operations, []admissionregistrationv1.OperationType{"CREATE"}) || !slices.Equal(r.Resources, []string{"pods"}) || !slices.Equal(r.APIGroups, []string{""}) {
		t.Errorf("rules %+v", w.Rules)
	}
	if e := w.ObjectSelector.MatchExpressions; len(e) != 1 || e[0].Key != "eks.amazonaws.com/skip-pod-identity-webhook" || e[0].Operator != metav1.LabelSelectorOpDoesNotExist {
		t.Errorf("objectSelector %+v", w.ObjectSelector)
	}
	if e := w.NamespaceSelector.MatchExpressions; len(e) != 1 || e[0].Operator != metav1.LabelSelectorOpNotIn || !slices.Equal(e[0].Values, []string{"pod-identity-webhook"}) {
		t.Errorf("the webhook's own namespace must be excluded: %+v", w.NamespaceSelector)
	}
}

func TestWebhookDeploymentSelfManagedCertificates(t *testing.T) {
	objs, err := RenderWebhook(WebhookOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := find[*appsv1.Deployment](t, objs)
	pod := d.Spec.Template.Spec
	c := container(t, pod.Containers, WebhookContainerName)
	want := []string{"--namespace=pod-identity-webhook", "--service-name=pod-identity-webhook", "--port=8443", "--metrics-port=9999",
		"--cert-secret=pod-identity-webhook/pod-identity-webhook-cert", "--webhook-config-name=pod-identity-webhook"}
	if !slices.Equal(c.Args, want) || c.Image != "localhost/ekslink/pod-identity-webhook:"+DefaultVersion || *d.Spec.Replicas != 2 {
		t.Errorf("args %q image %s", c.Args, c.Image)
	}
	sc := c.SecurityContext
	if !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		len(sc.Capabilities.Add) != 0 || *sc.RunAsUser != 65532 || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("security context %+v pod %+v", sc, pod.SecurityContext)
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port.StrVal != "metrics" {
		t.Errorf("probes %+v %+v", c.LivenessProbe, c.ReadinessProbe)
	}
	sec := find[*corev1.Secret](t, objs)
	if sec.Name != "pod-identity-webhook-cert" || len(sec.Data) != 0 {
		t.Errorf("the certificate Secret must be rendered empty (the webhook fills it): %+v", sec)
	}
	role := find[*rbacv1.Role](t, objs)
	if len(role.Rules) != 1 || !slices.Equal(role.Rules[0].Verbs, []string{"get", "update"}) || !slices.Equal(role.Rules[0].ResourceNames, []string{"pod-identity-webhook-cert"}) {
		t.Errorf("role %+v", role.Rules)
	}
	cr := find[*rbacv1.ClusterRole](t, objs)
	wantRules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
		{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, Verbs: []string{"get", "update"}, ResourceNames: []string{"pod-identity-webhook"}},
	}
	if fmt.Sprint(cr.Rules) != fmt.Sprint(wantRules) {
		t.Errorf("cluster role %+v", cr.Rules)
	}
}

func TestWebhookMountedCertificatesAndOptions(t *testing.T) {
	objs, err := RenderWebhook(WebhookOptions{
		Namespace: "irsa", TLSSecretName: "pod-identity-webhook-cert", CAInjectFrom: "irsa/pod-identity-webhook",
		AnnotationPrefix: "irsa", TokenAudience: "irsa", TokenExpiration: 3600, AWSDefaultRegion: "eu-west-1",
		STSRegionalEndpoint: true, WatchConfigMap: true, FSGroup: 65534, ServiceAccountRegion: true, LookupLive: true,
		Pod: PodOptions{PriorityClassName: "system-cluster-critical", Labels: map[string]string{"team": "platform"},
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
			Resources:        corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}},
		Metrics: MetricsOptions{ServiceMonitor: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	var services []string
	for _, o := range objs {
		if s, ok := o.(*corev1.Secret); ok {
			t.Errorf("no certificate Secret with TLSSecretName, got %s", s.Name)
		}
		if s, ok := o.(*corev1.Service); ok {
			services = append(services, fmt.Sprintf("%s:%d", s.Name, s.Spec.Ports[0].Port))
		}
	}
	if !slices.Equal(services, []string{"pod-identity-webhook:443", "pod-identity-webhook-metrics:9999"}) {
		t.Errorf("services %v", services)
	}
	d := find[*appsv1.Deployment](t, objs)
	pod := d.Spec.Template.Spec
	c := container(t, pod.Containers, WebhookContainerName)
	want := []string{"--namespace=irsa", "--service-name=pod-identity-webhook", "--port=8443", "--metrics-port=9999",
		"--in-cluster=false", "--tls-cert=/etc/webhook/certs/tls.crt", "--tls-key=/etc/webhook/certs/tls.key",
		"--annotation-prefix=irsa", "--token-audience=irsa", "--token-expiration=3600", "--aws-default-region=eu-west-1",
		"--sts-regional-endpoint=true", "--watch-config-map=true", "--fs-group=65534", "--service-account-region=true", "--service-account-lookup=live"}
	if !slices.Equal(c.Args, want) {
		t.Errorf("args %q", c.Args)
	}
	if pod.Volumes[0].Secret.SecretName != "pod-identity-webhook-cert" || !c.VolumeMounts[0].ReadOnly || c.VolumeMounts[0].MountPath != "/etc/webhook/certs" {
		t.Errorf("certificate mount %+v %+v", pod.Volumes, c.VolumeMounts)
	}
	if pod.NodeSelector[corev1.LabelOSStable] != "linux" || pod.Affinity.PodAntiAffinity == nil {
		t.Errorf("defaults lost: %+v %+v", pod.NodeSelector, pod.Affinity)
	}
	if pod.PriorityClassName != "system-cluster-critical" || d.Spec.Template.Labels["team"] != "platform" || pod.ImagePullSecrets[0].Name != "regcred" ||
		c.Resources.Requests.Memory().String() != "64Mi" {
		t.Errorf("pod options not applied: %+v", pod)
	}
	mwc := find[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs)
	if mwc.Annotations["cert-manager.io/inject-ca-from"] != "irsa/pod-identity-webhook" {
		t.Errorf("annotations %v", mwc.Annotations)
	}
	role := find[*rbacv1.Role](t, objs)
	if len(role.Rules) != 1 || role.Rules[0].Resources[0] != "configmaps" || !slices.Equal(role.Rules[0].ResourceNames, []string{"pod-identity-webhook"}) {
		t.Errorf("role %+v", role.Rules)
	}
	cr := find[*rbacv1.ClusterRole](t, objs)
	if len(cr.Rules) != 2 {
		t.Errorf("with mounted certificates the webhook configuration is not the webhook's to update: %+v", cr.Rules)
	}
}

func TestInvalidWebhookOptions(t *testing.T) {
	_, err := RenderWebhook(WebhookOptions{Port: 443, MetricsPort: 443, CABundle: []byte("x"), TokenExpiration: 60, Replicas: -1,
		Pod: PodOptions{Labels: map[string]string{LabelName: "x"}}, PodIdentityAssociations: "ekslink-pod-identity-associations"})
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("err = %v", err)
	}
	for _, field := range []string{"Port", "MetricsPort", "CABundle/CAInjectFrom", "TokenExpiration", "Replicas", "Pod.Labels", "PodIdentityAssociations"} {
		found := false
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var oe *OptionError
			found = found || (errors.As(e, &oe) && oe.Field == field)
		}
		if !found {
			t.Errorf("no error for %s in %v", field, err)
		}
	}
}
