package manifest

import (
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The defaults and checks every workload's options share: each workload's withDefaults and
// validate are built from these, so a default (pull policy, image reference, labels, security
// context, probe timing) is written once.

// DefaultImagePullPolicy is every workload's image pull policy when none is given.
const DefaultImagePullPolicy = corev1.PullIfNotPresent

// ImageReference is repository@digest when digest is set (the tag is then ignored, as the charts
// do), else repository:tag, with DefaultVersion for an empty tag.
func ImageReference(repository, tag, digest string) string {
	if digest != "" {
		return repository + "@" + digest
	}
	if tag == "" {
		tag = DefaultVersion
	}
	return repository + ":" + tag
}

// ImageWithRegistry replaces the registry of an image reference with registry (host[:port]), the
// rule of the charts' global.imageRegistry: the first path component is a registry when it
// contains "." or ":" or is "localhost" (Docker's reference rule) and is then replaced; otherwise
// the registry is put in front. An empty registry leaves image as it is.
func ImageWithRegistry(image, registry string) string {
	if registry == "" {
		return image
	}
	if first, rest, ok := strings.Cut(image, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return registry + "/" + rest
	}
	return registry + "/" + image
}

// registryPattern is a registry host with an optional port, as the charts' schema has it.
var registryPattern = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]{1,5})?$`)

// setDefault sets *v to def when *v is the zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// defaultImage fills an empty image with repository:version (version defaulting to
// DefaultVersion), the rule of every workload's Image and Version options.
func defaultImage(image, version *string, repository string) {
	setDefault(version, DefaultVersion)
	setDefault(image, ImageReference(repository, *version, ""))
}

// optionErrors collects every problem of one options value.
type optionErrors []error

func (e *optionErrors) add(err error) {
	if err != nil {
		*e = append(*e, err)
	}
}

func (e *optionErrors) dns1123Label(field, v string) {
	if msgs := validation.IsDNS1123Label(v); len(msgs) > 0 {
		e.add(optionError(field, v, msgs[0]))
	}
}

func (e *optionErrors) dns1123Subdomain(field, v string) {
	if msgs := validation.IsDNS1123Subdomain(v); len(msgs) > 0 {
		e.add(optionError(field, v, msgs[0]))
	}
}

func (e *optionErrors) labelKeyValue(field, k, v string) {
	if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
		e.add(optionError(field, k, msgs[0]))
	}
	if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
		e.add(optionError(field, k+"="+v, msgs[0]))
	}
}

// extraLabels checks labels added to the renderer's: valid, and not one the renderer sets (the
// pod selector and the recommended labels).
func (e *optionErrors) extraLabels(field string, labels map[string]string) {
	for k, v := range labels {
		if k == LabelName || k == LabelComponent || k == LabelPartOf {
			e.add(optionError(field, k, "is set by the renderer (the pod selector and recommended labels)"))
			continue
		}
		e.labelKeyValue(field, k, v)
	}
}

func (e optionErrors) err() error { return joinOptionErrors(e) }

// workloadCheck is what every workload validates alike: its namespace and name, image pull
// policy, extra environment (names the renderer sets itself are reserved) and pod options.
type workloadCheck struct {
	namespace, name string
	pullPolicy      corev1.PullPolicy
	env             []corev1.EnvVar
	reservedEnv     []string
	pod             PodOptions
	containers      []string
	imageRegistry   string
}

func (w workloadCheck) validate(errs *optionErrors) {
	errs.dns1123Label("Namespace", w.namespace)
	errs.dns1123Label("Name", w.name)
	switch w.pullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs.add(optionError("ImagePullPolicy", string(w.pullPolicy), "must be Always, IfNotPresent or Never"))
	}
	for _, e := range w.env {
		if msgs := validation.IsEnvVarName(e.Name); len(msgs) > 0 {
			errs.add(optionError("Env", e.Name, msgs[0]))
		}
		for _, r := range w.reservedEnv {
			if e.Name == r {
				errs.add(optionError("Env", e.Name, "is set by the renderer"))
			}
		}
	}
	if w.imageRegistry != "" && !registryPattern.MatchString(w.imageRegistry) {
		errs.add(optionError("ImageRegistry", w.imageRegistry, "must be a registry host with an optional port, e.g. registry.example:5000"))
	}
	*errs = append(*errs, validatePodOptions(w.pod, w.containers)...)
}

// commonLabels are the recommended labels on every object of a workload; LabelName alone is the
// pod selector.
func commonLabels(name, component string) map[string]string {
	return map[string]string{LabelName: name, LabelComponent: component, LabelPartOf: PartOf}
}

func objectMeta(name, namespace string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: copyMap(labels)}
}

// podSecurityContext is every workload's pod security context: the RuntimeDefault seccomp profile.
func podSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// rootContext is root (whatever user the image declares) with exactly the given capabilities, a
// read-only root filesystem, no privilege escalation and the RuntimeDefault seccomp profile.
// Root because Kubernetes grants added capabilities to non-root users only as permitted, not
// effective, so a non-root process could not use them.
func rootContext(capabilities ...corev1.Capability) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsUser:                ptr(int64(0)),
		RunAsNonRoot:             ptr(false),
		ReadOnlyRootFilesystem:   ptr(true),
		AllowPrivilegeEscalation: ptr(false),
		Capabilities: &corev1.Capabilities{
			Drop: []corev1.Capability{"ALL"},
			Add:  capabilities,
		},
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// httpGetProbe probes path with get every 10s (timeout 5s), failing after failures attempts.
func httpGetProbe(get corev1.HTTPGetAction, path string, failures int32) *corev1.Probe {
	get.Path = path
	get.Scheme = corev1.URISchemeHTTP
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &get},
		PeriodSeconds:    10,
		TimeoutSeconds:   5,
		FailureThreshold: failures,
	}
}

func ptr[T any](v T) *T { return &v }

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
