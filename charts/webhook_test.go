package charts

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/manifest"
)

const testCABundle = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func webhookCases() []chartCase {
	return []chartCase{
		{
			name:      "defaults: self-managed certificates",
			namespace: "pod-identity-webhook",
			values:    map[string]any{},
			render: func(ns string) ([]runtime.Object, error) {
				return manifest.RenderWebhook(manifest.WebhookOptions{Namespace: ns})
			},
		},
		{
			name:      "cert-manager certificate, upstream flags, pod fields and metrics",
			namespace: "irsa",
			values: map[string]any{
				"name": "irsa-webhook", "replicas": 3, "port": 9443, "servicePort": 8443, "timeoutSeconds": 5,
				"image":             map[string]any{"repository": "registry.example/team/pod-identity-webhook", "digest": testDigest, "pullPolicy": "Always"},
				"namespaceSelector": map[string]any{"matchLabels": map[string]any{"irsa": "enabled"}},
				"certificates":      map[string]any{"tlsSecretName": "webhook-tls", "caBundle": testCABundle, "certManagerInjectFrom": "irsa/webhook"},
				"config": map[string]any{"annotationPrefix": "irsa.example.com", "tokenAudience": "irsa", "tokenExpiration": 3600,
					"awsDefaultRegion": "eu-west-1", "stsRegionalEndpoint": true, "watchConfigMap": true, "podIdentityAssociations": "kube-system/ekslink-pod-identity-associations", "fsGroup": 65534, "serviceAccountRegion": true, "serviceAccountLookupLive": true},
				"resources":         map[string]any{"requests": map[string]any{"cpu": "10m", "memory": "32Mi"}},
				"nodeSelector":      map[string]any{"node-role": "system"},
				"tolerations":       []any{map[string]any{"key": "system", "operator": "Exists"}},
				"affinity":          map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "zone", "operator": "In", "values": []any{"a"}}}}}}}},
				"priorityClassName": "system-cluster-critical",
				"podAnnotations":    map[string]any{"example.com/team": "platform"},
				"podLabels":         map[string]any{"team": "platform"},
				"imagePullSecrets":  []any{"regcred", map[string]any{"name": "other"}},
				"metrics":           map[string]any{"port": 9100, "serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prom"}, "interval": "30s"}},
				"global":            map[string]any{"imageRegistry": "mirror.example:5000", "imagePullSecrets": []any{"regcred"}},
			},
			render: func(ns string) ([]runtime.Object, error) {
				return manifest.RenderWebhook(manifest.WebhookOptions{
					Namespace: ns, Name: "irsa-webhook", Replicas: 3, Port: 9443, ServicePort: 8443, TimeoutSeconds: 5,
					Image: "registry.example/team/pod-identity-webhook@" + testDigest, ImagePullPolicy: corev1.PullAlways,
					ImageRegistry:     "mirror.example:5000",
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"irsa": "enabled"}},
					TLSSecretName:     "webhook-tls", CABundle: []byte(testCABundle), CAInjectFrom: "irsa/webhook",
					AnnotationPrefix: "irsa.example.com", TokenAudience: "irsa", TokenExpiration: 3600, AWSDefaultRegion: "eu-west-1",
					STSRegionalEndpoint: true, WatchConfigMap: true, PodIdentityAssociations: "kube-system/ekslink-pod-identity-associations", FSGroup: 65534, ServiceAccountRegion: true, LookupLive: true,
					Pod: manifest.PodOptions{
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi"),
						}},
						// Helm merges maps over the defaults: the default os selector stays.
						NodeSelector: map[string]string{"node-role": "system", "kubernetes.io/os": "linux"},
						Tolerations:  []corev1.Toleration{{Key: "system", Operator: corev1.TolerationOpExists}},
						Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
							NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}},
						}}},
						PriorityClassName: "system-cluster-critical",
						Annotations:       map[string]string{"example.com/team": "platform"},
						Labels:            map[string]string{"team": "platform"},
						ImagePullSecrets:  []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "other"}},
					},
					MetricsPort: 9100,
					Metrics:     manifest.MetricsOptions{ServiceMonitor: true, ServiceMonitorLabels: map[string]string{"release": "prom"}, Interval: "30s"},
				})
			},
		},
	}
}

func TestWebhookChartMatchesTheRenderer(t *testing.T) {
	for _, c := range webhookCases() {
		t.Run(c.name, func(t *testing.T) { compareWithRenderer(t, Webhook, c) })
	}
}

func TestWebhookChartRefusesBadValues(t *testing.T) {
	ch, err := Load(Webhook)
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range map[string]map[string]any{
		"caBundle without tlsSecretName": {"certificates": map[string]any{"caBundle": testCABundle}},
		"privileged port":                {"port": 443},
		"same ports":                     {"port": 9999},
		"short token expiration":         {"config": map[string]any{"tokenExpiration": 60}},
		"unknown value":                  {"replica": 2},
		"selector label":                 {"podLabels": map[string]any{"app.kubernetes.io/name": "x"}},
		"timeout":                        {"timeoutSeconds": 31},
		"associations without namespace": {"config": map[string]any{"podIdentityAssociations": "ekslink-pod-identity-associations"}},
	} {
		if _, err := Render(ch, Release{Namespace: "pod-identity-webhook"}, values); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
}

func TestWebhookChartOutputPassesServerSideDryRun(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	for _, c := range webhookCases() {
		t.Run(c.name, func(t *testing.T) {
			ns := env.Namespace(t)
			var objs []*unstructured.Unstructured
			for _, o := range renderChart(t, Webhook, ns, c.values) {
				if o.GetKind() != "ServiceMonitor" { // its CRD is not installed here
					objs = append(objs, o)
				}
			}
			if err := manifest.Apply(ctx, env.Config, objs, manifest.ApplyOptions{DryRun: true}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
