package manifest

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// PodOptions are the pod fields every workload ekslink deploys accepts, the usual fields of a Helm
// chart (imagePullSecrets, podAnnotations, podLabels, affinity, priorityClassName, nodeSelector,
// tolerations, resources). ApplyPodOptions writes them into a pod template. A zero field leaves
// the workload's default (each workload's options document theirs).
type PodOptions struct {
	// ImagePullSecrets name Secrets in the workload's namespace that hold registry credentials.
	ImagePullSecrets []corev1.LocalObjectReference
	// Annotations are added to the pod template (not to the workload object).
	Annotations map[string]string
	// Labels are added to the pod template. They may not set the labels the renderer sets
	// (LabelName, LabelComponent, LabelPartOf): LabelName is the pod selector.
	Labels map[string]string
	// Affinity replaces the workload's default affinity.
	Affinity *corev1.Affinity
	// PriorityClassName replaces the workload's default priority class.
	PriorityClassName string
	// NodeSelector and Tolerations replace the workload's defaults.
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration
	// Resources apply to the workload's own containers (each workload names them, e.g. the
	// connector's init and proxy containers); ContainerResources replace them for the container
	// of that name (e.g. ConnectorAgentContainer, the SSM agent). Default: none set.
	Resources          corev1.ResourceRequirements
	ContainerResources map[string]corev1.ResourceRequirements
}

// ApplyPodOptions writes p into the pod template t: the fields p sets replace those of t, labels
// and annotations are added. Resources go to the containers and init containers named in
// resourceContainers, then ContainerResources to the container of each name. The render
// functions validate p first (validatePodOptions); ApplyPodOptions itself does not.
func ApplyPodOptions(t *corev1.PodTemplateSpec, p PodOptions, resourceContainers ...string) {
	if len(p.Labels) > 0 {
		if t.Labels == nil {
			t.Labels = map[string]string{}
		}
		for k, v := range p.Labels {
			t.Labels[k] = v
		}
	}
	if len(p.Annotations) > 0 {
		if t.Annotations == nil {
			t.Annotations = map[string]string{}
		}
		for k, v := range p.Annotations {
			t.Annotations[k] = v
		}
	}
	s := &t.Spec
	if len(p.ImagePullSecrets) > 0 {
		s.ImagePullSecrets = slices.Clone(p.ImagePullSecrets)
	}
	if p.Affinity != nil {
		s.Affinity = p.Affinity.DeepCopy()
	}
	if p.PriorityClassName != "" {
		s.PriorityClassName = p.PriorityClassName
	}
	if p.NodeSelector != nil {
		s.NodeSelector = copyMap(p.NodeSelector)
	}
	if p.Tolerations != nil {
		s.Tolerations = slices.Clone(p.Tolerations)
	}
	for _, cs := range [][]corev1.Container{s.InitContainers, s.Containers} {
		for i := range cs {
			if slices.Contains(resourceContainers, cs[i].Name) {
				cs[i].Resources = *p.Resources.DeepCopy()
			}
			if r, ok := p.ContainerResources[cs[i].Name]; ok {
				cs[i].Resources = *r.DeepCopy()
			}
		}
	}
}

// validatePodOptions checks p for a workload whose pod has the given containers (names, for
// ContainerResources). Field names in errors are prefixed "Pod.".
func validatePodOptions(p PodOptions, containers []string) []error {
	var errs optionErrors
	for i, s := range p.ImagePullSecrets {
		errs.dns1123Subdomain("Pod.ImagePullSecrets", s.Name)
		if slices.ContainsFunc(p.ImagePullSecrets[:i], func(o corev1.LocalObjectReference) bool { return o.Name == s.Name }) {
			// The API server's server-side apply keys the list by name.
			errs.add(optionError("Pod.ImagePullSecrets", s.Name, "is given twice"))
		}
	}
	errs.extraLabels("Pod.Labels", p.Labels)
	for k := range p.Annotations {
		if msgs := validation.IsQualifiedName(strings.ToLower(k)); len(msgs) > 0 {
			errs.add(optionError("Pod.Annotations", k, msgs[0]))
		}
	}
	if p.PriorityClassName != "" {
		errs.dns1123Subdomain("Pod.PriorityClassName", p.PriorityClassName)
	}
	for k, v := range p.NodeSelector {
		errs.labelKeyValue("Pod.NodeSelector", k, v)
	}
	for i, tol := range p.Tolerations {
		errs.add(validateToleration(i, tol))
	}
	for name := range p.ContainerResources {
		if !slices.Contains(containers, name) {
			errs.add(optionError("Pod.ContainerResources", name, "is not a container of this workload (have "+strings.Join(containers, ", ")+")"))
		}
	}
	return errs
}

func validateToleration(i int, tol corev1.Toleration) error {
	field := fmt.Sprintf("Pod.Tolerations[%d]", i)
	switch tol.Operator {
	case "", corev1.TolerationOpEqual:
	case corev1.TolerationOpExists:
		if tol.Value != "" {
			return optionError(field, tol.Value, "must have no value with operator Exists")
		}
	default:
		return optionError(field, string(tol.Operator), "operator must be Equal or Exists")
	}
	switch tol.Effect {
	case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		return optionError(field, string(tol.Effect), "effect must be NoSchedule, PreferNoSchedule or NoExecute")
	}
	if tol.Key == "" && tol.Operator != corev1.TolerationOpExists {
		return optionError(field, "", "an empty key needs operator Exists")
	}
	return nil
}
