package charts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/manifest"
)

func TestMain(m *testing.M) { envtest.Main(m) }

const (
	activationID   = "5a2ee3b4-8f3c-4c5e-9a7e-0f1b2c3d4e5f"
	activationCode = "AbCdEfGhIjKlMnOpQrStUvWx"
	arnAdmin       = "arn:aws:iam::123456789012:role/Admin"
	arnAlice       = "arn:aws:iam::123456789012:user/alice"
)

// chartCase is one set of chart values and the renderer options that must produce the same
// objects.
type chartCase struct {
	name      string
	namespace string
	values    map[string]any
	render    func(namespace string) ([]runtime.Object, error)
}

func connectorCases() []chartCase {
	return []chartCase{
		{
			name:      "required values only",
			namespace: "eks-connector",
			values: map[string]any{
				"activation": map[string]any{"id": activationID, "code": activationCode},
				"region":     "eu-west-1",
			},
			render: func(ns string) ([]runtime.Object, error) {
				return manifest.RenderConnector(manifest.ConnectorOptions{Namespace: ns, Region: "eu-west-1", ActivationID: activationID, ActivationCode: activationCode})
			},
		},
		{
			name:      "every value changed",
			namespace: "edge",
			values: map[string]any{
				"activation":        map[string]any{"id": activationID, "code": activationCode},
				"region":            "cn-north-1",
				"replicas":          3,
				"grantedARNs":       []any{arnAlice, arnAdmin, arnAlice},
				"userExtras":        true,
				"name":              "edge-connector",
				"stateSecretPrefix": "edge-state",
				"ssmEndpoint":       "https://vpce-1.ssm.cn-north-1.vpce.amazonaws.com.cn",
				"images": map[string]any{
					"pullPolicy": "Always",
					"connector":  map[string]any{"repository": "registry.example/connector", "tag": "1.2.3"},
					"ssmAgent":   map[string]any{"repository": "registry.example/ssm-agent", "tag": "3.3.0.0"},
				},
				"env":                                  map[string]any{"NO_PROXY": "kubernetes.default.svc", "HTTPS_PROXY": "http://proxy:3128"},
				"serviceAccountTokenExpirationSeconds": 7200,
				"resources": map[string]any{
					"connector": map[string]any{"requests": map[string]any{"cpu": "10m", "memory": "32Mi"}, "limits": map[string]any{"memory": "128Mi"}},
					"agent":     map[string]any{"requests": map[string]any{"cpu": "20m", "memory": "64Mi"}},
				},
				"nodeSelector":      map[string]any{"kubernetes.io/os": "linux"},
				"tolerations":       []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "edge", "effect": "NoSchedule"}},
				"affinity":          nodeAffinityValues,
				"priorityClassName": "edge-critical",
				"podAnnotations":    map[string]any{"example.com/owner": "platform", "prometheus.io/scrape": "false"},
				"podLabels":         map[string]any{"team": "platform", "tier": "1"},
				"imagePullSecrets":  []any{"regcred", map[string]any{"name": "mirror"}},
				"metrics": map[string]any{
					"addr":           "[$(POD_IP)]:9100",
					"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "kube-prometheus"}, "interval": "30s", "scrapeTimeout": "10s"},
				},
				"global": map[string]any{"imageRegistry": "mirror.example:5000", "imagePullSecrets": []any{map[string]any{"name": "global-cred"}, "regcred"}, "storageClass": "other charts' global"},
			},
			render: func(ns string) ([]runtime.Object, error) {
				return manifest.RenderConnector(manifest.ConnectorOptions{
					Namespace: ns, Name: "edge-connector", Replicas: 3, Region: "cn-north-1",
					ActivationID: activationID, ActivationCode: activationCode,
					StateSecretPrefix: "edge-state", SSMEndpoint: "https://vpce-1.ssm.cn-north-1.vpce.amazonaws.com.cn",
					GrantedARNs: []string{arnAlice, arnAdmin, arnAlice}, UserExtras: true,
					Image: "registry.example/connector:1.2.3", AgentImage: "registry.example/ssm-agent:3.3.0.0",
					ImageRegistry:   "mirror.example:5000",
					ImagePullPolicy: corev1.PullAlways,
					MetricsAddr:     "[$(POD_IP)]:9100",
					Metrics: manifest.MetricsOptions{ServiceMonitor: true, ServiceMonitorLabels: map[string]string{"release": "kube-prometheus"},
						Interval: "30s", ScrapeTimeout: "10s"},
					Env: []corev1.EnvVar{ // Helm ranges over maps in key order
						{Name: "HTTPS_PROXY", Value: "http://proxy:3128"}, {Name: "NO_PROXY", Value: "kubernetes.default.svc"},
					},
					TokenExpirationSeconds: 7200,
					Pod: manifest.PodOptions{
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
						},
						ContainerResources: map[string]corev1.ResourceRequirements{manifest.ConnectorAgentContainer: {
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("20m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
						}},
						NodeSelector:      map[string]string{"kubernetes.io/os": "linux"},
						Tolerations:       []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "edge", Effect: corev1.TaintEffectNoSchedule}},
						Affinity:          nodeAffinity,
						PriorityClassName: "edge-critical",
						Annotations:       map[string]string{"example.com/owner": "platform", "prometheus.io/scrape": "false"},
						Labels:            map[string]string{"team": "platform", "tier": "1"},
						// global first, each name once.
						ImagePullSecrets: []corev1.LocalObjectReference{{Name: "global-cred"}, {Name: "regcred"}, {Name: "mirror"}},
					},
				})
			},
		},
		{
			name:      "metrics Service alone, served beside the probes",
			namespace: "eks-connector",
			values: map[string]any{
				"activation": map[string]any{"id": activationID, "code": activationCode},
				"region":     "eu-west-1",
				"metrics":    map[string]any{"addr": manifest.HealthAddr, "service": map[string]any{"enabled": true}},
				"global":     map[string]any{"imageRegistry": "mirror.example"},
			},
			render: func(ns string) ([]runtime.Object, error) {
				return manifest.RenderConnector(manifest.ConnectorOptions{Namespace: ns, Region: "eu-west-1", ActivationID: activationID, ActivationCode: activationCode,
					MetricsAddr: manifest.HealthAddr, Metrics: manifest.MetricsOptions{Service: true}, ImageRegistry: "mirror.example"})
			},
		},
		{
			name:      "granted ARNs without user extras (the RBAC AWS documents)",
			namespace: "eks-connector",
			values: map[string]any{
				"activation":  map[string]any{"id": activationID, "code": activationCode},
				"region":      "eu-west-1",
				"grantedARNs": []any{arnAlice},
			},
			render: func(ns string) ([]runtime.Object, error) {
				return manifest.RenderConnector(manifest.ConnectorOptions{Namespace: ns, Region: "eu-west-1", ActivationID: activationID, ActivationCode: activationCode, GrantedARNs: []string{arnAlice}})
			},
		},
		{
			name:      "existing activation secret",
			namespace: "eks-connector",
			values: map[string]any{
				"activation": map[string]any{"id": activationID, "existingSecret": "my-activation"},
				"region":     "us-gov-west-1",
			},
			render: func(ns string) ([]runtime.Object, error) {
				return manifest.RenderConnector(manifest.ConnectorOptions{Namespace: ns, Region: "us-gov-west-1", ActivationID: activationID, ActivationSecretName: "my-activation"})
			},
		},
		{
			name:      "image pinned by the digest make push prints (the tag is ignored)",
			namespace: "eks-connector",
			values: map[string]any{
				"activation": map[string]any{"id": activationID, "code": activationCode},
				"region":     "eu-west-1",
				"images": map[string]any{"connector": map[string]any{
					"repository": "registry.example:5000/team/eks-connector", "tag": "v0.1.0", "digest": testDigest,
				}},
			},
			render: func(ns string) ([]runtime.Object, error) {
				return manifest.RenderConnector(manifest.ConnectorOptions{Namespace: ns, Region: "eu-west-1", ActivationID: activationID, ActivationCode: activationCode,
					Image: "registry.example:5000/team/eks-connector@" + testDigest})
			},
		},
	}
}

// nodeAffinity and nodeAffinityValues are the same affinity, typed and as chart values.
var (
	nodeAffinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
			Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{"amd64", "arm64"},
		}}}},
	}}}
	nodeAffinityValues = map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
		"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{
			"key": "kubernetes.io/arch", "operator": "In", "values": []any{"amd64", "arm64"},
		}}}},
	}}}
)

// testDigest is an image digest in the form "make push" prints.
const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func podIdentityCases() []chartCase {
	return []chartCase{
		{
			name:      "required values only",
			namespace: "kube-system",
			values:    map[string]any{"clusterName": "prod", "region": "eu-west-1"},
			render: func(ns string) ([]runtime.Object, error) {
				return manifest.RenderPodIdentityAgent(manifest.PodIdentityAgentOptions{Namespace: ns, ClusterName: "prod", Region: "eu-west-1"})
			},
		},
		{
			name:      "web identity backend with its defaults",
			namespace: "kube-system",
			values:    map[string]any{"clusterName": "onprem", "region": "eu-west-1", "webIdentity": map[string]any{"enabled": true}},
			render: func(ns string) ([]runtime.Object, error) {
				return manifest.RenderPodIdentityAgent(manifest.PodIdentityAgentOptions{Namespace: ns, ClusterName: "onprem", Region: "eu-west-1",
					WebIdentity: &manifest.PodIdentityWebIdentity{}})
			},
		},
		{
			name:      "hybrid nodes and custom addresses",
			namespace: "pod-identity",
			values: map[string]any{
				"clusterName": "hybrid_1", "region": "us-east-2", "name": "pia",
				"image":     map[string]any{"repository": "registry.example/pia", "tag": "9", "pullPolicy": "Always"},
				"bindHosts": []any{"169.254.170.23", "[fd00:ec2::99]"}, "port": 8080, "probeAddr": "0.0.0.0:9000",
				"metrics":      map[string]any{"addr": "[::1]:9001"},
				"hybrid":       map[string]any{"enabled": true, "credentialsDir": "/eks-hybrid/.aws"},
				"env":          map[string]any{"AWS_STS_REGIONAL_ENDPOINTS": "regional"},
				"webIdentity":  map[string]any{"enabled": true, "associations": "kube-system/assoc", "perPodSessions": true},
				"resources":    map[string]any{"requests": map[string]any{"cpu": "5m", "memory": "16Mi"}},
				"nodeSelector": map[string]any{"eks.amazonaws.com/compute-type": "hybrid"},
				"tolerations":  []any{map[string]any{"key": "hybrid", "operator": "Exists"}},
			},
			render: func(ns string) ([]runtime.Object, error) {
				return manifest.RenderPodIdentityAgent(manifest.PodIdentityAgentOptions{
					Namespace: ns, Name: "pia", ClusterName: "hybrid_1", Region: "us-east-2",
					Image: "registry.example/pia:9", ImagePullPolicy: corev1.PullAlways,
					BindHosts: []string{"169.254.170.23", "[fd00:ec2::99]"}, Port: 8080, ProbeAddr: "0.0.0.0:9000", MetricsAddr: "[::1]:9001",
					HybridCredentialsDir: "/eks-hybrid/.aws",
					Env:                  []corev1.EnvVar{{Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"}},
					WebIdentity:          &manifest.PodIdentityWebIdentity{Associations: "kube-system/assoc", PerPodSessions: true},
					Pod: manifest.PodOptions{
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("16Mi"),
						}},
						// Helm merges maps over the defaults: the default os selector stays.
						NodeSelector: map[string]string{"eks.amazonaws.com/compute-type": "hybrid", "kubernetes.io/os": "linux"},
						Tolerations:  []corev1.Toleration{{Key: "hybrid", Operator: corev1.TolerationOpExists}},
					},
				})
			},
		},
		{
			name:      "pod fields, metrics Service and ServiceMonitor, global values",
			namespace: "kube-system",
			values: map[string]any{
				"clusterName": "prod", "region": "eu-west-1",
				"affinity":          nodeAffinityValues,
				"priorityClassName": "system-cluster-critical",
				"podAnnotations":    map[string]any{"example.com/owner": "platform"},
				"podLabels":         map[string]any{"team": "platform"},
				"imagePullSecrets":  []any{map[string]any{"name": "regcred"}},
				"metrics": map[string]any{
					"addr":           ":2705",
					"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "kube-prometheus"}, "interval": "1m"},
				},
				"global": map[string]any{"imageRegistry": "mirror.example", "imagePullSecrets": []any{"global-cred"}},
			},
			render: func(ns string) ([]runtime.Object, error) {
				return manifest.RenderPodIdentityAgent(manifest.PodIdentityAgentOptions{Namespace: ns, ClusterName: "prod", Region: "eu-west-1",
					ImageRegistry: "mirror.example",
					MetricsAddr:   ":2705",
					Metrics:       manifest.MetricsOptions{ServiceMonitor: true, ServiceMonitorLabels: map[string]string{"release": "kube-prometheus"}, Interval: "1m"},
					Pod: manifest.PodOptions{
						Affinity:          nodeAffinity,
						PriorityClassName: "system-cluster-critical",
						Annotations:       map[string]string{"example.com/owner": "platform"},
						Labels:            map[string]string{"team": "platform"},
						ImagePullSecrets:  []corev1.LocalObjectReference{{Name: "global-cred"}, {Name: "regcred"}},
					},
				})
			},
		},
		{
			name:      "image pinned by the digest make push prints",
			namespace: "kube-system",
			values: map[string]any{"clusterName": "prod", "region": "eu-west-1",
				"image": map[string]any{"repository": "registry.example/team/pod-identity-agent", "digest": testDigest}},
			render: func(ns string) ([]runtime.Object, error) {
				return manifest.RenderPodIdentityAgent(manifest.PodIdentityAgentOptions{Namespace: ns, ClusterName: "prod", Region: "eu-west-1",
					Image: "registry.example/team/pod-identity-agent@" + testDigest})
			},
		},
	}
}

func renderChart(t testing.TB, name, namespace string, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	ch, err := Load(name)
	if err != nil {
		t.Fatal(err)
	}
	y, err := Render(ch, Release{Namespace: namespace}, values)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Decode(y)
	if err != nil {
		t.Fatalf("chart output is not valid YAML: %v\n%s", err, y)
	}
	return objs
}

// helmOnlyLabels are what Helm adds; the renderer's labels must otherwise be identical.
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}

func normalized(t *testing.T, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range objs {
		o = o.DeepCopy()
		if l := o.GetLabels(); l != nil {
			for _, k := range helmOnlyLabels {
				delete(l, k)
			}
			o.SetLabels(l)
		}
		if a := o.GetAnnotations(); a != nil {
			delete(a, "helm.sh/resource-policy") // the state Secrets outlive an uninstall
			if len(a) == 0 {
				a = nil
			}
			o.SetAnnotations(a)
		}
		y, err := manifest.CanonicalYAML(o)
		if err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())] = y
	}
	return out
}

func compareWithRenderer(t *testing.T, chartName string, c chartCase) {
	fromChart := normalized(t, renderChart(t, chartName, c.namespace, c.values))
	typed, err := c.render(c.namespace)
	if err != nil {
		t.Fatal(err)
	}
	u, err := manifest.Unstructured(typed)
	if err != nil {
		t.Fatal(err)
	}
	var rendered []*unstructured.Unstructured
	for _, o := range u {
		if o.GetKind() != "Namespace" { // helm install --create-namespace owns the namespace
			rendered = append(rendered, o)
		}
	}
	fromRenderer := normalized(t, rendered)
	var keys []string
	for k := range fromRenderer {
		keys = append(keys, k)
	}
	for k := range fromChart {
		if _, ok := fromRenderer[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if fromChart[k] != fromRenderer[k] {
			t.Errorf("%s differs\n--- chart:\n%s\n--- renderer:\n%s", k, fromChart[k], fromRenderer[k])
		}
	}
}

func TestConnectorChartMatchesTheRenderer(t *testing.T) {
	for _, c := range connectorCases() {
		t.Run(c.name, func(t *testing.T) { compareWithRenderer(t, Connector, c) })
	}
}

func TestPodIdentityAgentChartMatchesTheRenderer(t *testing.T) {
	for _, c := range podIdentityCases() {
		t.Run(c.name, func(t *testing.T) { compareWithRenderer(t, PodIdentityAgent, c) })
	}
}

func TestChartsRefuseBadValues(t *testing.T) {
	valid := func() map[string]any {
		return map[string]any{"activation": map[string]any{"id": activationID, "code": activationCode}, "region": "eu-west-1"}
	}
	// connectorWith and agentWith are valid values with one more.
	connectorWith := func(k string, v any) func() map[string]any {
		return func() map[string]any { m := valid(); m[k] = v; return m }
	}
	agentWith := func(k string, v any) func() map[string]any {
		return func() map[string]any { return map[string]any{"clusterName": "c", "region": "eu-west-1", k: v} }
	}
	tests := []struct {
		name   string
		chart  string
		values func() map[string]any
		want   []string
	}{
		{"connector without any values", Connector, func() map[string]any { return nil },
			[]string{"activation.id is required", "activation.code or activation.existingSecret is required", "region is required"}},
		{"activation id not a UUID", Connector, connectorWith("activation", map[string]any{"id": "abc", "code": activationCode}), []string{"activation"}},
		{"activation code given as the id is not echoed", Connector, connectorWith("activation", map[string]any{"id": "tiny-secret-9-Xk9bQ2mP7rT4vW8", "code": activationID}), []string{"activation.id is not the UUID"}},
		{"activation code too short", Connector, connectorWith("activation", map[string]any{"id": activationID, "code": "tiny-secret-9"}), []string{"activation.code is shorter than 20 characters"}},
		{"code and existing secret", Connector, connectorWith("activation", map[string]any{"id": activationID, "code": activationCode, "existingSecret": "x"}), []string{"not both"}},
		{"region that is not a region", Connector, connectorWith("region", "Europe"), []string{"region"}},
		{"zero replicas", Connector, connectorWith("replicas", 0), []string{"replicas"}},
		{"granted ARN that is not an ARN", Connector, connectorWith("grantedARNs", []any{"alice"}), []string{"grantedARNs"}},
		{"misspelt value", Connector, connectorWith("grantedArns", []any{arnAdmin}), []string{"grantedArns"}},
		{"unknown pull policy", Connector, connectorWith("images", map[string]any{"pullPolicy": "Sometimes"}), []string{"pullPolicy"}},
		{"image digest that is not a sha256 digest", Connector, connectorWith("images", map[string]any{"connector": map[string]any{"repository": "registry.example/c", "digest": "v0.1.0"}}), []string{"digest"}},
		{"image repository with a tag in it", Connector, connectorWith("images", map[string]any{"connector": map[string]any{"repository": "registry.example/c:v1"}}), []string{"repository"}},
		{"misspelt image value", Connector, connectorWith("images", map[string]any{"connector": map[string]any{"repository": "registry.example/c", "sha": testDigest}}), []string{"sha"}},
		{"agent image tag with a plus", PodIdentityAgent, agentWith("image", map[string]any{"tag": "v1.0.0+build"}), []string{"tag"}},
		{"agent image digest without its algorithm", PodIdentityAgent, agentWith("image", map[string]any{"digest": testDigest[len("sha256:"):]}), []string{"digest"}},
		{"reserved env", Connector, connectorWith("env", map[string]any{"POD_NAME": "x"}), []string{"env.POD_NAME"}},
		{"reserved env for the probe address", Connector, connectorWith("env", map[string]any{"POD_IP": "0.0.0.0"}), []string{"env.POD_IP"}},
		{"user extras not a boolean", Connector, connectorWith("userExtras", "yes"), []string{"userExtras"}},
		{"env name Kubernetes refuses", Connector, connectorWith("env", map[string]any{"HTTPS PROXY": "x"}), []string{"'HTTPS PROXY'"}},
		{"agent env name Kubernetes refuses", PodIdentityAgent, agentWith("env", map[string]any{"1ABC": "x"}), []string{"'1ABC'"}},
		{"agent without any values", PodIdentityAgent, func() map[string]any { return nil }, []string{"clusterName is required", "region is required"}},
		{"IPv6 bind host without brackets", PodIdentityAgent, agentWith("bindHosts", []any{"fd00:ec2::23"}), []string{"bindHosts"}},
		{"wildcard bind host", PodIdentityAgent, agentWith("bindHosts", []any{"0.0.0.0"}), []string{"bindHosts"}},
		{"IPv6 wildcard bind host", PodIdentityAgent, agentWith("bindHosts", []any{"[::]"}), []string{"bindHosts"}},
		{"IPv4 bind host in brackets", PodIdentityAgent, agentWith("bindHosts", []any{"[169.254.170.23]"}), []string{"bindHosts"}},
		{"bind host that is not an address", PodIdentityAgent, agentWith("bindHosts", []any{"999.254.170.23"}), []string{"bindHosts"}},
		{"port out of range", PodIdentityAgent, agentWith("port", 70000), []string{"port"}},
		{"metrics Service in front of loopback", Connector, connectorWith("metrics", map[string]any{"service": map[string]any{"enabled": true}}), []string{"metrics.addr 127.0.0.1:8080 is loopback"}},
		{"ServiceMonitor in front of IPv6 loopback", Connector, connectorWith("metrics", map[string]any{"addr": "[::1]:8080", "serviceMonitor": map[string]any{"enabled": true}}), []string{"is loopback"}},
		{"metrics Service on a random port", Connector, connectorWith("metrics", map[string]any{"addr": ":0", "service": map[string]any{"enabled": true}}), []string{"fixed port"}},
		{"metrics port out of range", Connector, connectorWith("metrics", map[string]any{"addr": ":99999"}), []string{"port must be 0-65535"}},
		{"metrics address that is no address", Connector, connectorWith("metrics", map[string]any{"addr": "http://0.0.0.0:8080"}), []string{"/metrics/addr", "pattern"}},
		{"agent metrics Service in front of loopback", PodIdentityAgent, agentWith("metrics", map[string]any{"service": map[string]any{"enabled": true}}), []string{"metrics.addr 127.0.0.1:2705 is loopback"}},
		{"agent metrics Service name too long", PodIdentityAgent, func() map[string]any {
			v := agentWith("name", strings.Repeat("a", 60))()
			v["metrics"] = map[string]any{"addr": ":2705", "service": map[string]any{"enabled": true}}
			return v
		}, []string{"must be a DNS-1035 label"}},
		{"ServiceMonitor interval that is not a Prometheus duration", Connector, connectorWith("metrics", map[string]any{"serviceMonitor": map[string]any{"interval": "30 seconds"}}), []string{"interval"}},
		{"ServiceMonitor label the chart sets", PodIdentityAgent, agentWith("metrics", map[string]any{"serviceMonitor": map[string]any{"labels": map[string]any{"helm.sh/chart": "x"}}}), []string{"metrics.serviceMonitor.labels.helm.sh/chart is set by the chart"}},
		{"pod label that is the pod selector", Connector, connectorWith("podLabels", map[string]any{"app.kubernetes.io/name": "other"}), []string{"podLabels.app.kubernetes.io/name is set by the chart"}},
		{"pod label value Kubernetes refuses", PodIdentityAgent, agentWith("podLabels", map[string]any{"team": "plat form"}), []string{"podLabels"}},
		{"pull secret misspelt", Connector, connectorWith("imagePullSecrets", []any{map[string]any{"nam": "regcred"}}), []string{"imagePullSecrets"}},
		{"global pull secret that is not a name", PodIdentityAgent, agentWith("global", map[string]any{"imagePullSecrets": []any{"Reg_Cred"}}), []string{"imagePullSecrets"}},
		{"global image registry given as a URL", Connector, connectorWith("global", map[string]any{"imageRegistry": "https://mirror.example"}), []string{"imageRegistry"}},
		{"web identity associations without a namespace", PodIdentityAgent, agentWith("webIdentity", map[string]any{"enabled": true, "associations": "assoc"}), []string{"associations"}},
		{"priority class that is not a name", PodIdentityAgent, agentWith("priorityClassName", "Node Critical"), []string{"priorityClassName"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := Load(tt.chart)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Render(ch, Release{Namespace: "ns"}, tt.values())
			if err == nil {
				t.Fatal("rendered")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "tiny-secret-9") {
				t.Errorf("error leaks the activation code: %v", err)
			}
		})
	}
}

func TestLoadUnknownChart(t *testing.T) {
	if _, err := Load("nope"); err == nil {
		t.Fatal("loaded an unknown chart")
	}
	ch, _ := Load(Connector)
	if _, err := Render(ch, Release{}, nil); err == nil || errors.Is(err, nil) {
		t.Fatal("rendered without a namespace")
	}
}

// serviceMonitorCRD is the renderer's test fixture: the prometheus-operator ServiceMonitor CRD
// reduced to the fields ekslink renders (its header names the upstream file), so the ServiceMonitor
// the charts render is validated by the API server against upstream's schema.
const serviceMonitorCRD = "../manifest/testdata/servicemonitor-crd-subset.yaml"

func TestChartOutputPassesServerSideDryRun(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	data, err := os.ReadFile(serviceMonitorCRD)
	if err != nil {
		t.Fatal(err)
	}
	crd, err := manifest.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := manifest.Apply(ctx, env.Config, crd, manifest.ApplyOptions{FieldManager: "test-crd"}); err != nil {
		t.Fatal(err)
	}
	for chartName, cases := range map[string][]chartCase{Connector: connectorCases(), PodIdentityAgent: podIdentityCases()} {
		for _, c := range cases {
			t.Run(chartName+"/"+c.name, func(t *testing.T) {
				ns := env.Namespace(t) // a dry run needs the release namespace to exist
				objs := renderChart(t, chartName, ns, c.values)
				// Until the CRD just applied is served, the ServiceMonitor's kind has no match.
				err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
					err := manifest.Apply(ctx, env.Config, objs, manifest.ApplyOptions{DryRun: true})
					if meta.IsNoMatchError(errors.Unwrap(err)) {
						return false, nil
					}
					return true, err
				})
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func BenchmarkRenderConnectorChart(b *testing.B) { benchmarkChart(b, Connector, connectorCases()[1]) }

func BenchmarkRenderPodIdentityAgentChart(b *testing.B) {
	benchmarkChart(b, PodIdentityAgent, podIdentityCases()[1])
}

func benchmarkChart(b *testing.B, name string, c chartCase) {
	ch, err := Load(name)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(ch, Release{Namespace: c.namespace}, c.values); err != nil {
			b.Fatal(err)
		}
	}
}

// TestChartAcceptsTheARNsTheRendererAccepts keeps the schema's grantedARNs pattern and the
// renderer's ARN validation (iamarn through impersonation/rbac) in step: the same ARN is
// either impersonable with both or refused by both.
func TestChartAcceptsTheARNsTheRendererAccepts(t *testing.T) {
	ch, err := Load(Connector)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		arn  string
		want bool
	}{
		{"arn:aws:iam::123456789012:user/alice", true},
		{"arn:aws:iam::123456789012:role/team/platform/Admin", true},
		{"arn:aws:iam::123456789012:root", true},
		{"arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com", true},
		{"arn:aws:sts::123456789012:federated-user/bob", true},
		{"arn:aws-cn:iam::123456789012:role/Admin", true},
		{"arn:aws-us-gov:iam::123456789012:role/Admin", true},
		{"arn:aws:iam::123456789012:role/*", false},
		{"arn:aws:iam::123456789012:group/admins", false},
		{"arn:aws:iam::123456789012:policy/Admin", false},
		{"arn:aws:sts::123456789012:assumed-role/Admin", false},
		{"arn:aws:sts::123456789012:assumed-role/Admin/a/b", false},
		{"arn:aws-moon:iam::123456789012:role/Admin", false},
		{"arn:aws:iam:eu-west-1:123456789012:role/Admin", false},
		{"arn:aws:iam::12345678901:role/Admin", false},
		{"arn:aws:iam::123456789012:role/" + strings.Repeat("a", 65), false},
	}
	for _, tt := range tests {
		t.Run(tt.arn, func(t *testing.T) {
			_, rerr := manifest.RenderConnector(manifest.ConnectorOptions{Region: "eu-west-1", ActivationID: activationID, ActivationCode: activationCode, GrantedARNs: []string{tt.arn}})
			_, cerr := Render(ch, Release{Namespace: "ns"}, map[string]any{
				"activation": map[string]any{"id": activationID, "code": activationCode}, "region": "eu-west-1", "grantedARNs": []any{tt.arn},
			})
			if (rerr == nil) != tt.want || (cerr == nil) != tt.want {
				t.Fatalf("want accepted=%v: renderer err %v, chart err %v", tt.want, rerr, cerr)
			}
		})
	}
}
