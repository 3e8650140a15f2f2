package manifest

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ekslink/ekslink/iamarn"
	"github.com/ekslink/ekslink/impersonation/rbac"
	"github.com/ekslink/ekslink/manifest/flagname"
)

// Defaults and fixed names of the connector deployment. They are the cross-package contract with
// cmd/eks-connector (flags), registration/statestore (Secret names) and impersonation/rbac (RBAC).
const (
	// DefaultNamespace is the connector's namespace.
	DefaultNamespace = "eks-connector"
	// DefaultName names the StatefulSet, its service account and the prefix of its other objects.
	DefaultName = "eks-connector"
	// DefaultReplicas is the StatefulSet's replica count (each replica is one SSM managed instance).
	DefaultReplicas = 2
	// DefaultStateSecretPrefix is the prefix of the per-replica state Secrets (<prefix>-<ordinal>).
	DefaultStateSecretPrefix = "eks-connector-state"
	// DefaultActivationSecretName is the Secret that holds the activation code under ActivationCodeKey.
	DefaultActivationSecretName = "eks-connector-activation"
	// ActivationCodeKey is the key of the activation code in the activation Secret.
	ActivationCodeKey = "code"
	// ActivationCodeDir is where the activation Secret is mounted in the init container.
	ActivationCodeDir = "/var/run/secrets/eks-connector/activation"
	// VaultDir is the SSM agent vault, an emptyDir shared by the init, agent and proxy containers.
	VaultDir = "/var/lib/amazon/ssm/Vault"
	// SharedDir holds the proxy's unix socket; the SSM agent connects to it.
	SharedDir = "/var/eks/shared"
	// SocketPath is the proxy's unix socket.
	SocketPath = SharedDir + "/connector.sock"
	// ServiceAccountTokenDir is where the projected service-account token, CA and namespace are
	// mounted (the in-cluster client-go location).
	ServiceAccountTokenDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	// DefaultConnectorImageRepository is the connector image (the tag defaults to DefaultVersion):
	// the name "make images" gives it (hack/images). ekslink has no official registry yet, so
	// this name says the image is built locally; push yours ("make push") and set Image.
	DefaultConnectorImageRepository = "localhost/ekslink/eks-connector"
	// DefaultSSMAgentImage is the unmodified AWS SSM agent image the EKS Connector ships with.
	DefaultSSMAgentImage = "public.ecr.aws/amazon-ssm-agent/amazon-ssm-agent:3.1.1927.0"
	// DefaultVersion is the image tag used when no image or version is given.
	DefaultVersion = "v0.1.0"
	// DefaultTokenExpirationSeconds is the projected service-account token lifetime requested; the
	// kubelet rotates it at 80%.
	DefaultTokenExpirationSeconds = 3607
	// DefaultHealthPort serves the proxy's /healthz and /readyz, on the pod IP only (HealthAddr):
	// where the kubelet probes, and nowhere else.
	DefaultHealthPort = 8081
	// HealthAddr is the proxy's --health-addr: the pod's primary IP (POD_IP, from the downward API
	// status.podIP, which is also the address the kubelet's httpGet probes use), in brackets so
	// that IPv4 and IPv6 pod IPs both form a valid host:port.
	HealthAddr = "[$(POD_IP)]:8081"
	// DefaultMetricsAddr is the proxy's metrics address: loopback only, scrape it with a sidecar or
	// change it deliberately (ConnectorOptions.MetricsAddr).
	DefaultMetricsAddr = "127.0.0.1:8080"

	// ConnectorInitContainer, ConnectorAgentContainer (the unmodified SSM agent) and
	// ConnectorProxyContainer are the connector pod's containers (keys of
	// PodOptions.ContainerResources).
	ConnectorInitContainer  = "connector-init"
	ConnectorAgentContainer = "connector-agent"
	ConnectorProxyContainer = "connector-proxy"

	// LabelName, LabelComponent and LabelPartOf are the recommended Kubernetes labels set on every
	// rendered object; LabelName alone is the pod selector.
	LabelName      = "app.kubernetes.io/name"
	LabelComponent = "app.kubernetes.io/component"
	LabelPartOf    = "app.kubernetes.io/part-of"
	// PartOf is the value of LabelPartOf.
	PartOf = "ekslink"
)

// SSMAgentConfig is the agent configuration the connector ships (amazon-ssm-agent.json): container
// mode, on-premises identity only, and a 7-day key rotation that the proxy's sync loop persists.
const SSMAgentConfig = `{"Profile":{"KeyAutoRotateDays":7},"Agent":{"ContainerMode":true},"Identity":{"ConsumptionOrder":["OnPrem"]}}`

// SSMAgentSeelog is the agent's log configuration: console only, so logs reach the container runtime
// and nothing grows inside the pod.
const SSMAgentSeelog = `<seelog type="adaptive" mininterval="2000000" maxinterval="100000000" critmsgcount="500" minlevel="info">
  <outputs formatid="fmtinfo">
    <console formatid="fmtinfo"/>
  </outputs>
  <formats>
    <format id="fmtinfo" format="%Date %Time %LEVEL %Msg%n"/>
  </formats>
</seelog>
`

// ConnectorOptions configure RenderConnector. Region and ActivationID are required; everything else
// has a default.
type ConnectorOptions struct {
	// Namespace is created by the output (default DefaultNamespace).
	Namespace string
	// Name of the StatefulSet and service account (default DefaultName).
	Name string
	// Replicas (default DefaultReplicas). Each replica registers its own managed instance.
	Replicas int32
	// Region is the AWS region of the activation (required).
	Region string
	// ActivationID is the activation id returned by "aws eks register-cluster" (required).
	ActivationID string
	// ActivationCode, when set, is rendered into the activation Secret. When empty, no Secret is
	// rendered and the Secret named ActivationSecretName must exist (created by other means).
	// It is never put in container arguments or environment.
	ActivationCode string
	// ActivationSecretName (default DefaultActivationSecretName).
	ActivationSecretName string
	// StateSecretPrefix is the prefix of the per-replica state Secrets (default
	// DefaultStateSecretPrefix).
	StateSecretPrefix string
	// SSMEndpoint overrides the SSM endpoint used by init (private endpoints). Optional.
	SSMEndpoint string
	// GrantedARNs are the IAM ARNs the proxy may impersonate. Empty renders no impersonation RBAC:
	// the proxy then cannot act for anyone (it never falls back to its own identity).
	GrantedARNs []string
	// UserExtras makes the proxy also send the user extras "arn" and "sessionname" (--user-extras)
	// and grants the impersonation ClusterRole impersonate on userextras/arn and
	// userextras/sessionname. Off (the default), the proxy sends Impersonate-User alone, as the EKS
	// Connector does, and the ClusterRole is the one AWS documents for it.
	UserExtras bool
	// Image is the connector image, repository:tag or repository@sha256:digest (default
	// DefaultConnectorImageRepository:Version).
	Image string
	// Version is the connector image tag used when Image is empty (default DefaultVersion).
	Version string
	// AgentImage is the SSM agent image (default DefaultSSMAgentImage).
	AgentImage string
	// ImageRegistry, when set, replaces the registry of Image and AgentImage (ImageWithRegistry),
	// e.g. a mirror; the charts' global.imageRegistry.
	ImageRegistry string
	// ImagePullPolicy (default IfNotPresent).
	ImagePullPolicy corev1.PullPolicy
	// Env is added to all three containers, e.g. HTTPS_PROXY and NO_PROXY for an outbound proxy
	// (NO_PROXY should then include the API server, e.g. kubernetes.default.svc).
	Env []corev1.EnvVar
	// Pod holds the pod fields every workload accepts. Pod.Resources apply to the init and proxy
	// containers; set the SSM agent container's in Pod.ContainerResources[ConnectorAgentContainer].
	// Pod.Affinity defaults to spreading the replicas over nodes (preferred pod anti-affinity on
	// kubernetes.io/hostname).
	Pod PodOptions
	// MetricsAddr is the proxy's /metrics address, --metrics-addr (default DefaultMetricsAddr,
	// loopback). To scrape it through Metrics, listen on the pod IP: "[$(POD_IP)]:8080" (POD_IP
	// is set from the downward API; the brackets fit IPv4 and IPv6). Giving HealthAddr serves
	// /metrics beside the probes.
	MetricsAddr string
	// Metrics renders the metrics Service and ServiceMonitor (both off by default).
	Metrics MetricsOptions
	// TokenExpirationSeconds of the projected service-account token (default
	// DefaultTokenExpirationSeconds, minimum 600).
	TokenExpirationSeconds int64
}

var activationIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (o ConnectorOptions) withDefaults() ConnectorOptions {
	setDefault(&o.Namespace, DefaultNamespace)
	setDefault(&o.Name, DefaultName)
	setDefault(&o.Replicas, DefaultReplicas)
	setDefault(&o.ActivationSecretName, DefaultActivationSecretName)
	setDefault(&o.StateSecretPrefix, DefaultStateSecretPrefix)
	defaultImage(&o.Image, &o.Version, DefaultConnectorImageRepository)
	setDefault(&o.AgentImage, DefaultSSMAgentImage)
	o.Image = ImageWithRegistry(o.Image, o.ImageRegistry)
	o.AgentImage = ImageWithRegistry(o.AgentImage, o.ImageRegistry)
	setDefault(&o.ImagePullPolicy, DefaultImagePullPolicy)
	setDefault(&o.TokenExpirationSeconds, DefaultTokenExpirationSeconds)
	setDefault(&o.MetricsAddr, DefaultMetricsAddr)
	if o.Pod.Affinity == nil {
		o.Pod.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
				Weight: 100,
				PodAffinityTerm: corev1.PodAffinityTerm{
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelName: o.Name}},
					TopologyKey:   "kubernetes.io/hostname",
				},
			}},
		}}
	}
	return o
}

// validate reports every problem, one error each.
func (o ConnectorOptions) validate() error {
	var errs optionErrors
	add := errs.add
	workloadCheck{
		namespace: o.Namespace, name: o.Name, pullPolicy: o.ImagePullPolicy,
		env: o.Env, reservedEnv: reservedEnv, pod: o.Pod,
		containers:    []string{ConnectorInitContainer, ConnectorAgentContainer, ConnectorProxyContainer},
		imageRegistry: o.ImageRegistry,
	}.validate(&errs)
	if len(o.Name) > 52 {
		// The StatefulSet controller appends a revision hash to a 63-character label value.
		add(optionError("Name", o.Name, "must be at most 52 characters (StatefulSet name limit)"))
	}
	if o.Replicas < 1 {
		add(optionError("Replicas", strconv.Itoa(int(o.Replicas)), "must be at least 1"))
	}
	if _, err := iamarn.PartitionForRegion(o.Region); err != nil {
		add(optionError("Region", o.Region, err.Error()))
	}
	if !activationIDPattern.MatchString(o.ActivationID) {
		// Not echoed: a value that is not an activation id is often the activation code, given
		// in the wrong field.
		shown := "(not shown)"
		if o.ActivationID == "" {
			shown = ""
		}
		add(optionError("ActivationID", shown, `must be the UUID "aws eks register-cluster" returned (activationId)`))
	}
	if o.ActivationCode != "" && len(o.ActivationCode) < 20 {
		add(optionError("ActivationCode", "(redacted)", "is shorter than 20 characters: use the activationCode from \"aws eks register-cluster\""))
	}
	errs.dns1123Subdomain("ActivationSecretName", o.ActivationSecretName)
	// The longest state Secret name must be valid too.
	last := stateSecretName(o.StateSecretPrefix, o.Replicas-1)
	if msgs := validation.IsDNS1123Subdomain(last); len(msgs) > 0 {
		add(optionError("StateSecretPrefix", o.StateSecretPrefix, msgs[0]))
	}
	if o.SSMEndpoint != "" {
		if u, err := url.Parse(o.SSMEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add(optionError("SSMEndpoint", o.SSMEndpoint, "must be an absolute http(s) URL"))
		}
	}
	validateMetrics(&errs, o.Metrics, o.Name, "MetricsAddr", o.MetricsAddr, "the pod IP (e.g. [$(POD_IP)]:8080)")
	if o.TokenExpirationSeconds < 600 {
		add(optionError("TokenExpirationSeconds", strconv.FormatInt(o.TokenExpirationSeconds, 10), "must be at least 600 (the API server's minimum)"))
	}
	return errs.err()
}

// reservedEnv are the variables the connector's containers get from the downward API.
var reservedEnv = []string{"POD_NAME", "POD_NAMESPACE", "POD_IP"}

// stateSecretName is the StatefulSet-ordinal naming shared with registration/statestore.
func stateSecretName(prefix string, ordinal int32) string {
	return prefix + "-" + strconv.Itoa(int(ordinal))
}

// StateSecretNames returns the state Secret names of replicas 0..replicas-1.
func StateSecretNames(prefix string, replicas int32) []string {
	if replicas < 1 {
		return nil
	}
	out := make([]string, 0, replicas)
	for i := int32(0); i < replicas; i++ {
		out = append(out, stateSecretName(prefix, i))
	}
	return out
}

// RenderConnector renders the connector deployment, in apply order: Namespace, ServiceAccount,
// activation Secret (when ActivationCode is set), the empty state Secrets, ConfigMap, Role,
// RoleBinding, impersonation ClusterRole and ClusterRoleBinding (when GrantedARNs is not empty),
// StatefulSet, and the metrics Service and ServiceMonitor when Metrics asks for them.
//
// Errors wrap ErrInvalidOptions and list every problem found (errors.As *OptionError).
func RenderConnector(opts ConnectorOptions) ([]runtime.Object, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return renderConnector(o)
}

func renderConnector(o ConnectorOptions) ([]runtime.Object, error) {
	labels := commonLabels(o.Name, "connector")
	meta := func(name string) metav1.ObjectMeta { return objectMeta(name, o.Namespace, labels) }
	agentConfigName := o.Name + "-agent"
	objs := []runtime.Object{
		&corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: o.Namespace, Labels: namespaceLabels(labels)},
		},
		&corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: meta(o.Name),
			// The token reaches only the init and proxy containers, through a projected volume with
			// an expiry; the SSM agent never sees it.
			AutomountServiceAccountToken: ptr(false),
		},
	}
	if o.ActivationCode != "" {
		objs = append(objs, &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: meta(o.ActivationSecretName),
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{ActivationCodeKey: []byte(o.ActivationCode)},
		})
	}
	// The state Secrets exist before the pods start, empty: the store adopts an existing Secret
	// without data, so the service account needs no create verb (which RBAC cannot restrict by
	// name) and can touch no Secret but these.
	for _, name := range StateSecretNames(o.StateSecretPrefix, o.Replicas) {
		objs = append(objs, &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: meta(name),
			Type:       corev1.SecretTypeOpaque,
		})
	}
	objs = append(objs,
		&corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: meta(agentConfigName),
			Data:       map[string]string{"amazon-ssm-agent.json": SSMAgentConfig, "seelog.xml": SSMAgentSeelog},
		},
		&rbacv1.Role{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
			ObjectMeta: meta(o.Name),
			Rules: []rbacv1.PolicyRule{
				// The replicas read and update only the state Secrets, which the manifests
				// create. No create verb: RBAC cannot restrict it by name, so it would let a
				// stolen token create any Secret in the namespace. No patch either: the store
				// writes with update and a resourceVersion precondition.
				{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "update"},
					ResourceNames: StateSecretNames(o.StateSecretPrefix, o.Replicas)},
				// No rule for the activation Secret: the kubelet mounts it into the init container,
				// so the service account never needs to read it (a stolen token cannot register
				// more instances with the activation).
			},
		},
		&rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: meta(o.Name),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: o.Name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: o.Name, Namespace: o.Namespace}},
		},
	)
	if len(o.GrantedARNs) > 0 {
		imp, err := rbac.ImpersonationClusterRole(rbac.ImpersonationOptions{
			ARNs: o.GrantedARNs, Namespace: o.Namespace, ServiceAccount: o.Name,
			Name: o.Name + "-impersonation", Labels: labels, UserExtras: o.UserExtras,
		})
		if err != nil {
			return nil, optionError("GrantedARNs", fmt.Sprint(o.GrantedARNs), err.Error())
		}
		for _, obj := range imp.List() {
			objs = append(objs, obj.(runtime.Object))
		}
	}
	objs = append(objs, connectorStatefulSet(o, labels, agentConfigName))
	objs = append(objs, renderMetrics(o.Metrics, o.Name, o.Namespace, labels, o.MetricsAddr)...)
	return objs, nil
}

func connectorStatefulSet(o ConnectorOptions, labels map[string]string, agentConfigName string) *appsv1.StatefulSet {
	selector := map[string]string{LabelName: o.Name}
	podEnv := []corev1.EnvVar{
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
	}
	podEnv = append(podEnv, o.Env...)
	const (
		volShared     = "eks-connector-shared"
		volVault      = "eks-agent-vault"
		volConfig     = "eks-agent-config"
		volToken      = "service-account-token"
		volActivation = "activation"
	)
	tokenMount := corev1.VolumeMount{Name: volToken, MountPath: ServiceAccountTokenDir, ReadOnly: true}
	initArgs := []string{
		"init",
		"--" + flagname.ActivationID + "=" + o.ActivationID,
		"--" + flagname.ActivationCodeFile + "=" + path.Join(ActivationCodeDir, ActivationCodeKey),
		"--" + flagname.Region + "=" + o.Region,
		"--" + flagname.StateNamespace + "=$(POD_NAMESPACE)",
		"--" + flagname.StateSecretPrefix + "=" + o.StateSecretPrefix,
		"--" + flagname.VaultDir + "=" + VaultDir,
		"--" + flagname.PodName + "=$(POD_NAME)",
	}
	if o.SSMEndpoint != "" {
		initArgs = append(initArgs, "--"+flagname.SSMEndpoint+"="+o.SSMEndpoint)
	}
	proxyArgs := []string{
		"proxy",
		"--" + flagname.Listen + "=unix://" + SocketPath,
		"--" + flagname.VaultDir + "=" + VaultDir,
		"--" + flagname.StateNamespace + "=$(POD_NAMESPACE)",
		"--" + flagname.StateSecretPrefix + "=" + o.StateSecretPrefix,
		"--" + flagname.PodName + "=$(POD_NAME)",
		"--" + flagname.HealthAddr + "=" + HealthAddr,
		"--" + flagname.MetricsAddr + "=" + o.MetricsAddr,
	}
	if o.UserExtras {
		proxyArgs = append(proxyArgs, "--"+flagname.UserExtras)
	}
	healthProbe := corev1.HTTPGetAction{Port: intstr.FromString("health")}
	sts := &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: objectMeta(o.Name, o.Namespace, labels),
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr(o.Replicas),
			ServiceName:         o.Name,
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: copyMap(labels)},
				Spec: corev1.PodSpec{
					ServiceAccountName:           o.Name,
					AutomountServiceAccountToken: ptr(false),
					SecurityContext:              podSecurityContext(),
					InitContainers: []corev1.Container{{
						Name:            ConnectorInitContainer,
						Image:           o.Image,
						ImagePullPolicy: o.ImagePullPolicy,
						Args:            initArgs,
						Env:             podEnv,
						SecurityContext: vaultContext(),
						VolumeMounts: []corev1.VolumeMount{
							tokenMount,
							{Name: volVault, MountPath: VaultDir},
							{Name: volActivation, MountPath: ActivationCodeDir, ReadOnly: true},
						},
					}},
					Containers: []corev1.Container{
						{
							Name:            ConnectorAgentContainer,
							Image:           o.AgentImage,
							ImagePullPolicy: o.ImagePullPolicy,
							Env:             append([]corev1.EnvVar{{Name: "AWS_EC2_METADATA_DISABLED", Value: "true"}}, o.Env...),
							// The unmodified agent runs as root and hardens the vault (see
							// vaultContext): DAC_OVERRIDE is the only capability it needs.
							SecurityContext: &corev1.SecurityContext{
								AllowPrivilegeEscalation: ptr(false),
								Capabilities: &corev1.Capabilities{
									Drop: []corev1.Capability{"ALL"},
									Add:  []corev1.Capability{"DAC_OVERRIDE"},
								},
								SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
							},
							VolumeMounts: []corev1.VolumeMount{
								{Name: volShared, MountPath: SharedDir},
								{Name: volVault, MountPath: VaultDir},
								{Name: volConfig, MountPath: "/etc/amazon/ssm/amazon-ssm-agent.json", SubPath: "amazon-ssm-agent.json", ReadOnly: true},
								{Name: volConfig, MountPath: "/etc/amazon/ssm/seelog.xml", SubPath: "seelog.xml", ReadOnly: true},
							},
						},
						{
							Name:            ConnectorProxyContainer,
							Image:           o.Image,
							ImagePullPolicy: o.ImagePullPolicy,
							Args:            proxyArgs,
							Env:             podEnv,
							Ports:           []corev1.ContainerPort{{Name: "health", ContainerPort: DefaultHealthPort, Protocol: corev1.ProtocolTCP}},
							SecurityContext: vaultContext(),
							LivenessProbe:   httpGetProbe(healthProbe, "/healthz", 3),
							ReadinessProbe:  httpGetProbe(healthProbe, "/readyz", 1),
							VolumeMounts: []corev1.VolumeMount{
								tokenMount,
								{Name: volShared, MountPath: SharedDir},
								{Name: volVault, MountPath: VaultDir, ReadOnly: true},
							},
						},
					},
					Volumes: []corev1.Volume{
						{Name: volShared, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: volVault, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: volConfig, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: agentConfigName},
						}}},
						{Name: volActivation, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
							SecretName:  o.ActivationSecretName,
							Items:       []corev1.KeyToPath{{Key: ActivationCodeKey, Path: ActivationCodeKey}},
							DefaultMode: ptr(int32(0o440)),
						}}},
						{Name: volToken, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
							DefaultMode: ptr(int32(0o440)),
							Sources: []corev1.VolumeProjection{
								{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr(o.TokenExpirationSeconds)}},
								{ConfigMap: &corev1.ConfigMapProjection{
									LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
									Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
								}},
								{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
									Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
								}}}},
							},
						}}},
					},
				},
			},
		},
	}
	ApplyPodOptions(&sts.Spec.Template, o.Pod, ConnectorInitContainer, ConnectorProxyContainer)
	return sts
}

// namespaceLabels adds Pod Security Admission: baseline is enforced. Restricted is out of reach:
// the unmodified SSM agent needs root and DAC_OVERRIDE for its vault (see vaultContext).
func namespaceLabels(labels map[string]string) map[string]string {
	l := copyMap(labels)
	l["pod-security.kubernetes.io/enforce"] = "baseline"
	return l
}

// vaultContext is the security context of the init and proxy containers. They share the vault
// with the unmodified SSM agent, which "hardens" it on every start: it chmods every file and
// directory to 0600 and chowns them to root:root, and fails if it cannot. Files a non-root init
// wrote could not be hardened (the agent has neither CHOWN nor FOWNER), and a non-root proxy
// could not read the hardened key the agent rotates. So both run as root with DAC_OVERRIDE as
// their only capability (what the EKS Connector uses), a read-only root filesystem and no
// privilege escalation.
func vaultContext() *corev1.SecurityContext { return rootContext("DAC_OVERRIDE") }
