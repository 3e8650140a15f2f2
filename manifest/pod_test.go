package manifest

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/internal/testenv"
)

// everyPodOption sets every PodOptions field.
func everyPodOption() PodOptions {
	return PodOptions{
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
		Annotations:      map[string]string{"example.com/owner": "platform"},
		Labels:           map[string]string{"team": "platform"},
		Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
				Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{"amd64", "arm64"},
			}}}},
		}}},
		PriorityClassName: "system-cluster-critical",
		NodeSelector:      map[string]string{"node-role.example.com/edge": "true"},
		Tolerations:       []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "edge", Effect: corev1.TaintEffectNoSchedule}},
		Resources:         corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}},
	}
}

func TestPodOptionsReachBothWorkloads(t *testing.T) {
	p := everyPodOption()
	agentRes := corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}
	_, cobjs := connectorObjects(t, func(o *ConnectorOptions) {
		o.Pod = p
		o.Pod.ContainerResources = map[string]corev1.ResourceRequirements{ConnectorAgentContainer: agentRes}
	})
	pobjs := agentObjects(t, PodIdentityAgentOptions{Pod: p})
	templates := map[string]corev1.PodTemplateSpec{
		"connector": find[*appsv1.StatefulSet](t, cobjs).Spec.Template,
		"agent":     find[*appsv1.DaemonSet](t, pobjs).Spec.Template,
	}
	for name, tpl := range templates {
		t.Run(name, func(t *testing.T) {
			s := tpl.Spec
			if !reflect.DeepEqual(s.ImagePullSecrets, p.ImagePullSecrets) || s.PriorityClassName != p.PriorityClassName ||
				!reflect.DeepEqual(s.Affinity, p.Affinity) || !reflect.DeepEqual(s.NodeSelector, p.NodeSelector) ||
				!reflect.DeepEqual(s.Tolerations, p.Tolerations) {
				t.Errorf("pod spec does not carry the options: %+v", s)
			}
			if tpl.Annotations["example.com/owner"] != "platform" || tpl.Labels["team"] != "platform" || tpl.Labels[LabelName] == "" {
				t.Errorf("template metadata = %v %v", tpl.Labels, tpl.Annotations)
			}
			for _, c := range append(append([]corev1.Container{}, s.InitContainers...), s.Containers...) {
				want := p.Resources
				if c.Name == ConnectorAgentContainer {
					want = agentRes
				}
				if !reflect.DeepEqual(c.Resources, want) {
					t.Errorf("%s resources = %+v, want %+v", c.Name, c.Resources, want)
				}
			}
		})
	}
}

func TestPodOptionDefaultsPerWorkload(t *testing.T) {
	_, cobjs := connectorObjects(t, func(*ConnectorOptions) {})
	cs := find[*appsv1.StatefulSet](t, cobjs).Spec.Template.Spec
	anti := cs.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
	if anti.TopologyKey != "kubernetes.io/hostname" || anti.LabelSelector.MatchLabels[LabelName] != DefaultName || cs.PriorityClassName != "" {
		t.Errorf("connector defaults: affinity %+v, priority %q", cs.Affinity, cs.PriorityClassName)
	}
	pobjs := agentObjects(t, PodIdentityAgentOptions{})
	ps := find[*appsv1.DaemonSet](t, pobjs).Spec.Template.Spec
	if ps.PriorityClassName != "system-node-critical" || ps.NodeSelector["kubernetes.io/os"] != "linux" ||
		len(ps.Tolerations) != 1 || ps.Tolerations[0].Operator != corev1.TolerationOpExists || ps.Affinity != nil {
		t.Errorf("agent defaults: %+v", ps)
	}
	if len(cs.ImagePullSecrets)+len(ps.ImagePullSecrets) != 0 {
		t.Error("pull secrets rendered without being asked for")
	}
}

func TestInvalidPodOptionsAreAllReported(t *testing.T) {
	o := validConnectorOptions()
	o.Pod = PodOptions{
		ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "Not_A_Name"}, {Name: "regcred"}, {Name: "regcred"}},
		Labels:             map[string]string{LabelName: "other", "ok": "bad value!"},
		Annotations:        map[string]string{"not a key": "x"},
		PriorityClassName:  "UPPER",
		NodeSelector:       map[string]string{"kubernetes.io/os": "linux/amd64"},
		Tolerations:        []corev1.Toleration{{Key: "k", Operator: "Maybe"}, {Operator: corev1.TolerationOpExists, Value: "v"}, {Key: "k", Effect: "Sometimes"}, {Value: "v"}},
		ContainerResources: map[string]corev1.ResourceRequirements{"sidecar": {}},
	}
	_, err := RenderConnector(o)
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		"Pod.ImagePullSecrets \"Not_A_Name\"", "Pod.ImagePullSecrets \"regcred\": is given twice", "Pod.Labels \"app.kubernetes.io/name\": is set by the renderer",
		"Pod.Labels \"ok=bad value!\"", "Pod.Annotations \"not a key\"", "Pod.PriorityClassName \"UPPER\"",
		"Pod.NodeSelector \"kubernetes.io/os=linux/amd64\"", "Pod.Tolerations[0] \"Maybe\"", "Pod.Tolerations[1] \"v\"",
		"Pod.Tolerations[2] \"Sometimes\"", "Pod.Tolerations[3] \"\": an empty key needs operator Exists",
		"Pod.ContainerResources \"sidecar\": is not a container of this workload (have connector-init, connector-agent, connector-proxy)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	_, err = RenderPodIdentityAgent(PodIdentityAgentOptions{ClusterName: "prod", Region: "eu-west-1",
		Pod: PodOptions{ContainerResources: map[string]corev1.ResourceRequirements{ConnectorAgentContainer: {}}}})
	if err == nil || !strings.Contains(err.Error(), "have pod-identity-agent-init, pod-identity-agent") {
		t.Fatalf("agent with a connector container's resources: %v", err)
	}
}

// TestPodOptionsAreAcceptedByTheAPIServer applies both workloads with every pod option set, for
// real, and reads them back: the API server keeps what the options say.
func TestPodOptionsAreAcceptedByTheAPIServer(t *testing.T) {
	env := testenv.Shared(t)
	ctx := testenv.Context(t)
	ns := env.Namespace(t)
	co, cobjs := renderConnectorIn(t, ns, "pod-", func(o *ConnectorOptions) {
		o.Pod = everyPodOption()
		o.Pod.ContainerResources = map[string]corev1.ResourceRequirements{ConnectorAgentContainer: {Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}}
	})
	pobjs := agentObjects(t, PodIdentityAgentOptions{Namespace: ns, Pod: everyPodOption()})
	applyForReal(t, env, append(cobjs, pobjs...))
	sts, err := env.Client.AppsV1().StatefulSets(ns).Get(ctx, co.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := env.Client.AppsV1().DaemonSets(ns).Get(ctx, DefaultPodIdentityName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tpl := range []corev1.PodTemplateSpec{sts.Spec.Template, ds.Spec.Template} {
		s := tpl.Spec
		if s.ImagePullSecrets[0].Name != "regcred" || s.PriorityClassName != "system-cluster-critical" ||
			s.Affinity.NodeAffinity == nil || s.NodeSelector["node-role.example.com/edge"] != "true" ||
			s.Tolerations[0].Value != "edge" || tpl.Labels["team"] != "platform" || tpl.Annotations["example.com/owner"] != "platform" {
			t.Errorf("stored template lost options: %+v", tpl)
		}
	}
	agent := sts.Spec.Template.Spec.Containers[0]
	if agent.Name != ConnectorAgentContainer || agent.Resources.Limits.Memory().String() != "256Mi" {
		t.Errorf("SSM agent container resources = %+v", agent.Resources)
	}
}
