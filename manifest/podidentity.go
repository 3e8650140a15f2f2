package manifest

import (
	"net"
	"path"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ekslink/ekslink/iamarn"
	"github.com/ekslink/ekslink/manifest/flagname"
)

// Defaults of the EKS Pod Identity agent DaemonSet.
const (
	// DefaultPodIdentityNamespace is where the agent runs.
	DefaultPodIdentityNamespace = "kube-system"
	// DefaultPodIdentityName names the DaemonSet.
	DefaultPodIdentityName = "eks-pod-identity-agent"
	// DefaultPodIdentityImageRepository is the agent image (the tag defaults to DefaultVersion):
	// the name "make images" gives it (hack/images). ekslink has no official registry yet, so
	// this name says the image is built locally; push yours ("make push") and set Image.
	DefaultPodIdentityImageRepository = "localhost/ekslink/pod-identity-agent"
	// DefaultPodIdentityPort is the port the SDKs call (http://169.254.170.23/v1/credentials).
	DefaultPodIdentityPort = 80
	// DefaultPodIdentityProbeAddr serves /healthz and /readyz (loopback on the node).
	DefaultPodIdentityProbeAddr = "127.0.0.1:2703"
	// DefaultPodIdentityMetricsAddr serves /metrics (loopback on the node).
	DefaultPodIdentityMetricsAddr = "127.0.0.1:2705"
	// PodIdentityInitContainer and PodIdentityServerContainer are the agent pod's containers.
	PodIdentityInitContainer   = "pod-identity-agent-init"
	PodIdentityServerContainer = "pod-identity-agent"
	// DefaultHybridCredentialsDir is where EKS hybrid nodes keep the node's AWS credentials file.
	DefaultHybridCredentialsDir = "/eks-hybrid/.aws"
)

// The link-local addresses the AWS SDKs know for the agent, the default BindHosts.
const (
	DefaultBindHostIPv4 = "169.254.170.23"
	DefaultBindHostIPv6 = "[fd00:ec2::23]"
)

func defaultBindHosts() []string { return []string{DefaultBindHostIPv4, DefaultBindHostIPv6} }

// PodIdentityAgentOptions configure RenderPodIdentityAgent. ClusterName and Region are required.
type PodIdentityAgentOptions struct {
	// Namespace (default DefaultPodIdentityNamespace). It is not created: kube-system exists.
	Namespace string
	// Name of the DaemonSet (default DefaultPodIdentityName).
	Name string
	// ClusterName is the EKS cluster name passed to AssumeRoleForPodIdentity (required).
	ClusterName string
	// Region is the AWS region of the cluster, set as AWS_REGION (required).
	Region string
	// Image, repository:tag or repository@sha256:digest (default
	// DefaultPodIdentityImageRepository:Version), Version (default DefaultVersion),
	// ImagePullPolicy (default IfNotPresent).
	Image           string
	Version         string
	ImagePullPolicy corev1.PullPolicy
	// ImageRegistry, when set, replaces the registry of Image (ImageWithRegistry), e.g. a
	// mirror; the chart's global.imageRegistry.
	ImageRegistry string
	// BindHosts are the addresses the server listens on (default DefaultBindHostIPv4 and DefaultBindHostIPv6; IPv6 in
	// brackets). The init container creates them on the node (a dummy link), so they must be
	// addresses reserved for the agent, not addresses the node already has.
	BindHosts []string
	// Port (default DefaultPodIdentityPort).
	Port int32
	// ProbeAddr and MetricsAddr (defaults DefaultPodIdentityProbeAddr, DefaultPodIdentityMetricsAddr).
	ProbeAddr   string
	MetricsAddr string
	// Metrics renders the metrics Service and ServiceMonitor (both off by default); MetricsAddr
	// must then not be loopback. The agent runs in the host network, so the Service's endpoints
	// are the nodes' addresses and MetricsAddr is a node address (":2705" listens on all of them).
	Metrics MetricsOptions
	// HybridCredentialsDir, when set, mounts this host directory read-only at the same path,
	// points AWS_SHARED_CREDENTIALS_FILE at its "credentials" file and passes --rotate-credentials
	// so the agent follows the file as the node's credentials rotate (EKS hybrid nodes have no
	// instance profile; use DefaultHybridCredentialsDir).
	HybridCredentialsDir string
	// WebIdentity, when set, selects the web identity backend (clusters that are not EKS; see
	// PodIdentityWebIdentity): the agent then also gets a ServiceAccount and RBAC. Nil: the EKS
	// Auth backend, with no Kubernetes access.
	WebIdentity *PodIdentityWebIdentity
	// Env is added to the server container.
	Env []corev1.EnvVar
	// Pod holds the pod fields every workload accepts. Pod.Resources apply to the init and server
	// containers. Defaults: Pod.NodeSelector kubernetes.io/os=linux, Pod.Tolerations tolerate
	// everything (the agent must run on every node), Pod.PriorityClassName
	// system-node-critical.
	Pod PodOptions
}

func (o PodIdentityAgentOptions) withDefaults() PodIdentityAgentOptions {
	setDefault(&o.Namespace, DefaultPodIdentityNamespace)
	setDefault(&o.Name, DefaultPodIdentityName)
	defaultImage(&o.Image, &o.Version, DefaultPodIdentityImageRepository)
	o.Image = ImageWithRegistry(o.Image, o.ImageRegistry)
	setDefault(&o.ImagePullPolicy, DefaultImagePullPolicy)
	if len(o.BindHosts) == 0 {
		o.BindHosts = defaultBindHosts()
	}
	setDefault(&o.Port, DefaultPodIdentityPort)
	setDefault(&o.ProbeAddr, DefaultPodIdentityProbeAddr)
	setDefault(&o.MetricsAddr, DefaultPodIdentityMetricsAddr)
	if o.Pod.NodeSelector == nil {
		o.Pod.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
	}
	if o.Pod.Tolerations == nil {
		o.Pod.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	}
	setDefault(&o.Pod.PriorityClassName, "system-node-critical")
	if o.WebIdentity != nil {
		w := *o.WebIdentity
		setDefault(&w.Associations, DefaultPodIdentityAssociations)
		o.WebIdentity = &w
	}
	return o
}

func (o PodIdentityAgentOptions) validate() error {
	var errs optionErrors
	add := errs.add
	workloadCheck{
		namespace: o.Namespace, name: o.Name, pullPolicy: o.ImagePullPolicy, env: o.Env, pod: o.Pod,
		containers:    []string{PodIdentityInitContainer, PodIdentityServerContainer},
		imageRegistry: o.ImageRegistry,
	}.validate(&errs)
	if !clusterNamePattern(o.ClusterName) {
		add(optionError("ClusterName", o.ClusterName, "must be 1-100 letters, digits, hyphens or underscores, starting with a letter or digit"))
	}
	if _, err := iamarn.PartitionForRegion(o.Region); err != nil {
		add(optionError("Region", o.Region, err.Error()))
	}
	for _, h := range o.BindHosts {
		bracketed := strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]")
		ip := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		parsed := net.ParseIP(ip)
		switch {
		case parsed == nil || strings.Contains(ip, ":") != bracketed:
			add(optionError("BindHosts", h, "must be an IP address, IPv6 in brackets (and IPv4 without)"))
		case parsed.IsUnspecified() || parsed.IsMulticast():
			// The init container puts bind hosts on a link, and a wildcard would serve
			// credentials on every node address.
			add(optionError("BindHosts", h, "must be a unicast address reserved for the agent, not a wildcard"))
		}
	}
	if o.Port < 1 || o.Port > 65535 {
		add(optionError("Port", strconv.Itoa(int(o.Port)), "must be 1-65535"))
	}
	if _, _, err := probeHostPort(o.ProbeAddr); err != nil {
		add(optionError("ProbeAddr", o.ProbeAddr, err.Error()))
	}
	validateMetrics(&errs, o.Metrics, o.Name, "MetricsAddr", o.MetricsAddr, "the node's address")
	if o.HybridCredentialsDir != "" && !path.IsAbs(o.HybridCredentialsDir) {
		add(optionError("HybridCredentialsDir", o.HybridCredentialsDir, "must be an absolute path"))
	}
	if o.WebIdentity != nil {
		validateConfigMapRef(&errs, "WebIdentity.Associations", o.WebIdentity.Associations)
	}
	return errs.err()
}

func clusterNamePattern(s string) bool {
	if len(s) < 1 || len(s) > 100 {
		return false
	}
	for i, r := range s {
		ok := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || (i > 0 && (r == '-' || r == '_'))
		if !ok {
			return false
		}
	}
	return true
}

// probeHostPort splits host:port for an HTTP probe; an unspecified host means the pod (node) IP.
func probeHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, &strconv.NumError{Func: "port", Num: port, Err: strconv.ErrRange}
	}
	if host == "0.0.0.0" || host == "::" {
		host = ""
	}
	return host, p, nil
}

// RenderPodIdentityAgent renders the EKS Pod Identity agent DaemonSet: host network, an init
// container with NET_ADMIN that creates the link-local addresses, and the server with
// NET_BIND_SERVICE only (none on a port from 1024 up), probed on its probe address. Both run as root.
// The metrics Service and ServiceMonitor follow when Metrics asks for them. With WebIdentity, the
// ServiceAccount, ClusterRole and ClusterRoleBinding (pods) and the Role and RoleBinding of the
// associations ConfigMap come first, in apply order.
//
// Errors wrap ErrInvalidOptions and list every problem found.
func RenderPodIdentityAgent(opts PodIdentityAgentOptions) ([]runtime.Object, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return renderPodIdentityAgent(o), nil
}

func renderPodIdentityAgent(o PodIdentityAgentOptions) []runtime.Object {
	labels := commonLabels(o.Name, "pod-identity-agent")
	selector := map[string]string{LabelName: o.Name}
	probeHost, probePort, _ := probeHostPort(o.ProbeAddr)
	probe := corev1.HTTPGetAction{Host: probeHost, Port: intstr.FromInt32(int32(probePort))}
	env := []corev1.EnvVar{{Name: "AWS_REGION", Value: o.Region}}
	args := []string{
		"server",
		"--" + flagname.ClusterName + "=" + o.ClusterName,
		"--" + flagname.BindHosts + "=" + strings.Join(o.BindHosts, ","),
		"--" + flagname.Port + "=" + strconv.Itoa(int(o.Port)),
		"--" + flagname.ProbeAddr + "=" + o.ProbeAddr,
		"--" + flagname.MetricsAddr + "=" + o.MetricsAddr,
	}
	var mounts []corev1.VolumeMount
	var volumes []corev1.Volume
	if o.HybridCredentialsDir != "" {
		env = append(env, corev1.EnvVar{Name: "AWS_SHARED_CREDENTIALS_FILE", Value: path.Join(o.HybridCredentialsDir, "credentials")})
		args = append(args, "--"+flagname.RotateCredentials)
		mounts = append(mounts, corev1.VolumeMount{Name: "hybrid-credentials", MountPath: o.HybridCredentialsDir, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "hybrid-credentials", VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: o.HybridCredentialsDir, Type: ptr(corev1.HostPathDirectory)},
		}})
	}
	env = append(env, o.Env...)
	maxUnavailable := intstr.FromString("10%")
	ds := &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: objectMeta(o.Name, o.Namespace, labels),
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &maxUnavailable},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: copyMap(labels)},
				Spec: corev1.PodSpec{
					HostNetwork:                  true,
					AutomountServiceAccountToken: ptr(false),
					SecurityContext:              podSecurityContext(),
					InitContainers: []corev1.Container{{
						Name:            PodIdentityInitContainer,
						Image:           o.Image,
						ImagePullPolicy: o.ImagePullPolicy,
						Args:            initArgs(o.BindHosts),
						SecurityContext: rootContext("NET_ADMIN"),
					}},
					Containers: []corev1.Container{{
						Name:            PodIdentityServerContainer,
						Image:           o.Image,
						ImagePullPolicy: o.ImagePullPolicy,
						Args:            args,
						Env:             env,
						VolumeMounts:    mounts,
						SecurityContext: serverContext(o.Port),
						LivenessProbe:   httpGetProbe(probe, "/healthz", 3),
						ReadinessProbe:  httpGetProbe(probe, "/readyz", 1),
					}},
					Volumes: volumes,
				},
			},
		},
	}
	var objs []runtime.Object
	if o.WebIdentity != nil {
		objs = podIdentityWebIdentity(o, labels, &ds.Spec.Template.Spec)
	}
	ApplyPodOptions(&ds.Spec.Template, o.Pod, PodIdentityInitContainer, PodIdentityServerContainer)
	objs = append(objs, ds)
	return append(objs, renderMetrics(o.Metrics, o.Name, o.Namespace, labels, o.MetricsAddr)...)
}

// serverContext gives the server NET_BIND_SERVICE only for a privileged port (the host network
// has no unprivileged-port sysctl); on a port from 1024 up it has no capability at all.
func serverContext(port int32) *corev1.SecurityContext {
	if port < 1024 {
		return rootContext("NET_BIND_SERVICE")
	}
	return rootContext()
}

// initArgs tells the init container which addresses to create when they are not the defaults it
// knows: the bind hosts as host routes (/32, /128). Bind hosts are therefore addresses meant for
// the agent alone, not existing node addresses.
func initArgs(bindHosts []string) []string {
	if strings.Join(bindHosts, ",") == strings.Join(defaultBindHosts(), ",") {
		return []string{"init"}
	}
	cidrs := make([]string, len(bindHosts))
	for i, h := range bindHosts {
		if strings.HasPrefix(h, "[") {
			cidrs[i] = strings.Trim(h, "[]") + "/128"
		} else {
			cidrs[i] = h + "/32"
		}
	}
	return []string{"init", "--" + flagname.Addresses + "=" + strings.Join(cidrs, ",")}
}
