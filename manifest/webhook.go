package manifest

import (
	"strconv"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ekslink/ekslink/manifest/flagname"
)

// Defaults and fixed names of the pod identity webhook deployment.
const (
	// DefaultWebhookNamespace is where the webhook runs (created by RenderWebhook).
	DefaultWebhookNamespace = "pod-identity-webhook"
	// DefaultWebhookName names the Deployment, its ServiceAccount, Service, RBAC objects and the
	// MutatingWebhookConfiguration (the upstream's name).
	DefaultWebhookName = "pod-identity-webhook"
	// DefaultWebhookImageRepository is the webhook image (the tag defaults to DefaultVersion):
	// the name "make images" gives it (hack/images). Push yours ("make push") and set Image.
	DefaultWebhookImageRepository = "localhost/ekslink/pod-identity-webhook"
	// DefaultWebhookReplicas: two, so that a rollout or a node drain never leaves pods admitted
	// without credentials (the webhook is registered with failurePolicy Ignore).
	DefaultWebhookReplicas = 2
	// DefaultWebhookPort is the container's TLS port (/mutate); the Service listens on 443.
	DefaultWebhookPort = 8443
	// DefaultWebhookMetricsPort serves /metrics, /healthz and /readyz over plain HTTP (the
	// upstream's --metrics-port default).
	DefaultWebhookMetricsPort = 9999
	// WebhookName is the name of the one webhook in the MutatingWebhookConfiguration (the
	// upstream's deploy/mutatingwebhook.yaml).
	WebhookName = "pod-identity-webhook.amazonaws.com"
	// WebhookSkipLabel on a pod keeps the API server from calling the webhook for it (the
	// upstream's objectSelector).
	WebhookSkipLabel = "eks.amazonaws.com/skip-pod-identity-webhook"
	// WebhookConfigMapName is the ConfigMap the webhook reads with WatchConfigMap (in its own
	// namespace; the upstream's name).
	WebhookConfigMapName = "pod-identity-webhook"
	// WebhookContainerName is the webhook's container.
	WebhookContainerName = "pod-identity-webhook"
	// webhookUser is the image's non-root user (hack/images).
	webhookUser = 65532
	// webhookCertMountPath is where a mounted certificate Secret is (the upstream's default
	// --tls-cert/--tls-key directory).
	webhookCertMountPath = "/etc/webhook/certs"
)

// WebhookOptions configure RenderWebhook. The zero value is a complete deployment with
// self-managed certificates.
type WebhookOptions struct {
	// Namespace (default DefaultWebhookNamespace) and Name (default DefaultWebhookName). The
	// cluster-scoped objects (ClusterRole, ClusterRoleBinding, MutatingWebhookConfiguration) are
	// named Name too: two installations need two names.
	Namespace string
	Name      string
	// Image (repository:tag or repository@sha256:digest; default
	// DefaultWebhookImageRepository:Version), Version (default DefaultVersion), ImagePullPolicy
	// (default IfNotPresent).
	Image           string
	Version         string
	ImagePullPolicy corev1.PullPolicy
	// ImageRegistry, when set, replaces the registry of Image (ImageWithRegistry), e.g. a
	// mirror; the chart's global.imageRegistry.
	ImageRegistry string
	// Replicas (default DefaultWebhookReplicas).
	Replicas int32
	// Port (default DefaultWebhookPort) and MetricsPort (default DefaultWebhookMetricsPort) are
	// the container's ports; both must be from 1024 up (the container has no capability).
	Port        int32
	MetricsPort int32

	// TLSSecretName, when set, serves the certificate of this kubernetes.io/tls Secret (written by
	// cert-manager, or by hand), mounted at /etc/webhook/certs and reloaded when it changes;
	// the caBundle is then CABundle, or injected by cert-manager (CAInjectFrom). When empty (the
	// default) the webhook manages its own CA and serving certificate in the Secret
	// <Name>-cert and sets the caBundle itself: no manual step.
	TLSSecretName string
	// CABundle is the PEM CA bundle of the MutatingWebhookConfiguration (with TLSSecretName).
	CABundle []byte
	// CAInjectFrom is "<namespace>/<certificate>" of a cert-manager Certificate whose CA
	// cert-manager injects as the caBundle (with TLSSecretName): the annotation
	// cert-manager.io/inject-ca-from.
	CAInjectFrom string

	// AnnotationPrefix, TokenAudience, TokenExpiration (seconds), AWSDefaultRegion and
	// STSRegionalEndpoint are the upstream's flags of the same names; zero values are the
	// webhook's defaults and are not written.
	AnnotationPrefix    string
	TokenAudience       string
	TokenExpiration     int64
	AWSDefaultRegion    string
	STSRegionalEndpoint bool
	// WatchConfigMap reads IRSA mappings from ConfigMap WebhookConfigMapName in Namespace
	// (--watch-config-map): the Role then allows reading that one ConfigMap.
	WatchConfigMap bool
	// PodIdentityAssociations, when set, is "<namespace>/<name>" of the EKS Pod Identity
	// associations ConfigMap (podidentity/association; ekslink's default is
	// kube-system/ekslink-pod-identity-associations) whose service accounts get container
	// credentials (--watch-pod-identity-associations): a Role "<Name>-pod-identity-associations"
	// in that namespace, which must exist, then allows get, list and watch of that one ConfigMap.
	PodIdentityAssociations string
	// FSGroup and ServiceAccountRegion are --fs-group and --service-account-region.
	FSGroup              int64
	ServiceAccountRegion bool
	// LookupLive passes --service-account-lookup=live: every pod's service account is read
	// from the API server (one GET per admission), so a role-arn changed right before a pod
	// counts. Default: the informer cache when it has the account, as the upstream.
	LookupLive bool

	// NamespaceSelector selects the namespaces whose pods the API server sends to the webhook
	// (default: every namespace but the webhook's own, so its own pods never wait for it).
	NamespaceSelector *metav1.LabelSelector
	// TimeoutSeconds is how long the API server waits for the webhook (default 10, the API
	// server's default; at most 30).
	TimeoutSeconds int32
	// ServicePort is the Service's port, the one the API server calls (default 443).
	ServicePort int32

	// Pod are the usual pod fields. Defaults: Pod.NodeSelector kubernetes.io/os=linux,
	// Pod.Affinity a preferred anti-affinity that spreads the replicas over nodes; Pod.Resources
	// apply to the webhook container (WebhookContainerName).
	Pod PodOptions
	// Metrics renders a metrics Service "<Name>-metrics" and a ServiceMonitor for MetricsPort.
	Metrics MetricsOptions
}

func (o WebhookOptions) withDefaults() WebhookOptions {
	setDefault(&o.Namespace, DefaultWebhookNamespace)
	setDefault(&o.Name, DefaultWebhookName)
	defaultImage(&o.Image, &o.Version, DefaultWebhookImageRepository)
	o.Image = ImageWithRegistry(o.Image, o.ImageRegistry)
	setDefault(&o.ImagePullPolicy, DefaultImagePullPolicy)
	setDefault(&o.Replicas, DefaultWebhookReplicas)
	setDefault(&o.Port, DefaultWebhookPort)
	setDefault(&o.MetricsPort, DefaultWebhookMetricsPort)
	setDefault(&o.TimeoutSeconds, 10)
	setDefault(&o.ServicePort, 443)
	if o.Pod.NodeSelector == nil {
		o.Pod.NodeSelector = map[string]string{corev1.LabelOSStable: "linux"}
	}
	if o.Pod.Affinity == nil {
		o.Pod.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100,
				PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: corev1.LabelHostname,
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelName: o.Name}}}}},
		}}
	}
	if o.NamespaceSelector == nil {
		o.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: []string{o.Namespace},
		}}}
	}
	return o
}

func (o WebhookOptions) validate() error {
	var errs optionErrors
	workloadCheck{namespace: o.Namespace, name: o.Name, pullPolicy: o.ImagePullPolicy, imageRegistry: o.ImageRegistry,
		pod: o.Pod, containers: []string{WebhookContainerName}}.validate(&errs)
	for field, p := range map[string]int32{"Port": o.Port, "MetricsPort": o.MetricsPort} {
		if p < 1024 || p > 65535 {
			errs.add(optionError(field, strconv.Itoa(int(p)), "must be 1024-65535 (the container runs without capabilities)"))
		}
	}
	if o.ServicePort < 1 || o.ServicePort > 65535 {
		errs.add(optionError("ServicePort", strconv.Itoa(int(o.ServicePort)), "must be 1-65535"))
	}
	if o.Port == o.MetricsPort {
		errs.add(optionError("MetricsPort", strconv.Itoa(int(o.MetricsPort)), "must differ from Port"))
	}
	validateMetrics(&errs, o.Metrics, o.Name, "MetricsPort", ":"+strconv.Itoa(int(o.MetricsPort)), "the pod")
	if o.Replicas < 1 {
		errs.add(optionError("Replicas", strconv.Itoa(int(o.Replicas)), "must be at least 1"))
	}
	if o.TLSSecretName != "" {
		errs.dns1123Subdomain("TLSSecretName", o.TLSSecretName)
	} else if len(o.CABundle) > 0 || o.CAInjectFrom != "" {
		errs.add(optionError("CABundle/CAInjectFrom", o.CAInjectFrom, "need TLSSecretName: with self-managed certificates the webhook sets the caBundle itself"))
	}
	if o.TokenExpiration != 0 && o.TokenExpiration < 600 {
		errs.add(optionError("TokenExpiration", strconv.FormatInt(o.TokenExpiration, 10), "must be at least 600 seconds"))
	}
	if o.FSGroup < 0 {
		errs.add(optionError("FSGroup", strconv.FormatInt(o.FSGroup, 10), "must not be negative"))
	}
	if o.TimeoutSeconds < 1 || o.TimeoutSeconds > 30 {
		errs.add(optionError("TimeoutSeconds", strconv.Itoa(int(o.TimeoutSeconds)), "must be 1-30"))
	}
	if _, err := metav1.LabelSelectorAsSelector(o.NamespaceSelector); err != nil {
		errs.add(optionError("NamespaceSelector", o.NamespaceSelector.String(), err.Error()))
	}
	if o.PodIdentityAssociations != "" {
		validateConfigMapRef(&errs, "PodIdentityAssociations", o.PodIdentityAssociations)
	}
	return errs.err()
}

// WebhookCertSecretName is the Secret in which a webhook rendered with self-managed certificates
// keeps its CA and serving certificate.
func WebhookCertSecretName(name string) string { return name + "-cert" }

// RenderWebhook renders the pod identity webhook (cmd/pod-identity-webhook), in apply order:
// Namespace, ServiceAccount, the empty certificate Secret (self-managed certificates), Role and
// RoleBinding, ClusterRole and ClusterRoleBinding, Service, the metrics Service and ServiceMonitor
// (Metrics), Deployment, MutatingWebhookConfiguration.
//
// The MutatingWebhookConfiguration has failurePolicy Ignore (the webhook never blocks pod
// creation), sideEffects None, AdmissionReview v1, pods CREATE, and the upstream's objectSelector
// that skips pods labelled WebhookSkipLabel. The RBAC is the least the binary needs: get, list and
// watch service accounts; create events (the Warning Events on service accounts with unusable
// annotations); get and update of its own certificate Secret and MutatingWebhookConfiguration by
// name (self-managed certificates; the Secret is rendered empty, so no create is needed); get,
// list and watch of the one ConfigMap (WatchConfigMap), and of the associations ConfigMap by name in
// its namespace (PodIdentityAssociations).
//
// Errors wrap ErrInvalidOptions and list every problem found.
func RenderWebhook(opts WebhookOptions) ([]runtime.Object, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return renderWebhook(o), nil
}

func renderWebhook(o WebhookOptions) []runtime.Object {
	labels := commonLabels(o.Name, "pod-identity-webhook")
	meta := func(name string) metav1.ObjectMeta { return objectMeta(name, o.Namespace, labels) }
	clusterMeta := func(name string) metav1.ObjectMeta { return objectMeta(name, "", labels) }
	selfCerts := o.TLSSecretName == ""
	secretName := WebhookCertSecretName(o.Name)
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: o.Name, Namespace: o.Namespace}}

	objs := []runtime.Object{
		&corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{
			Name: o.Namespace, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
		}},
		&corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta(o.Name)},
	}
	var nsRules []rbacv1.PolicyRule
	if selfCerts {
		objs = append(objs, &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: meta(secretName),
			Type: corev1.SecretTypeOpaque})
		nsRules = append(nsRules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"},
			Verbs: []string{"get", "update"}, ResourceNames: []string{secretName}})
	}
	if o.WatchConfigMap {
		nsRules = append(nsRules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"},
			Verbs: []string{"get", "list", "watch"}, ResourceNames: []string{WebhookConfigMapName}})
	}
	if len(nsRules) > 0 {
		objs = append(objs,
			&rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}, ObjectMeta: meta(o.Name), Rules: nsRules},
			&rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"}, ObjectMeta: meta(o.Name),
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: o.Name}, Subjects: subject})
	}
	if o.PodIdentityAssociations != "" {
		objs = append(objs, configMapReader(o.PodIdentityAssociations, o.Name+"-pod-identity-associations", labels, subject)...)
	}
	clusterRules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
	}
	if selfCerts {
		clusterRules = append(clusterRules, rbacv1.PolicyRule{APIGroups: []string{admissionregistrationv1.GroupName},
			Resources: []string{"mutatingwebhookconfigurations"}, Verbs: []string{"get", "update"}, ResourceNames: []string{o.Name}})
	}
	objs = append(objs,
		&rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}, ObjectMeta: clusterMeta(o.Name), Rules: clusterRules},
		&rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"}, ObjectMeta: clusterMeta(o.Name),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: o.Name}, Subjects: subject},
		&corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: meta(o.Name), Spec: corev1.ServiceSpec{
			Selector: map[string]string{LabelName: o.Name},
			Ports:    []corev1.ServicePort{{Name: "https", Port: o.ServicePort, TargetPort: intstr.FromString("https"), Protocol: corev1.ProtocolTCP}},
		}},
	)
	objs = append(objs, renderMetrics(o.Metrics, o.Name, o.Namespace, labels, ":"+strconv.Itoa(int(o.MetricsPort)))...)
	return append(objs, webhookDeployment(o, labels), webhookConfiguration(o, clusterMeta(o.Name)))
}

// webhookArgs are the container arguments of the webhook: the flags of cmd/pod-identity-webhook.
func webhookArgs(o WebhookOptions) []string {
	flag := func(name, value string) string { return "--" + name + "=" + value }
	args := []string{
		flag(flagname.Namespace, o.Namespace),
		flag(flagname.ServiceName, o.Name),
		flag(flagname.Port, strconv.Itoa(int(o.Port))),
		flag(flagname.MetricsPort, strconv.Itoa(int(o.MetricsPort))),
	}
	if o.TLSSecretName == "" {
		args = append(args,
			flag(flagname.CertSecret, o.Namespace+"/"+WebhookCertSecretName(o.Name)),
			flag(flagname.WebhookConfigName, o.Name))
	} else {
		args = append(args, flag(flagname.InCluster, "false"),
			flag(flagname.TLSCert, webhookCertMountPath+"/"+corev1.TLSCertKey),
			flag(flagname.TLSKey, webhookCertMountPath+"/"+corev1.TLSPrivateKeyKey))
	}
	if o.AnnotationPrefix != "" {
		args = append(args, flag(flagname.AnnotationPrefix, o.AnnotationPrefix))
	}
	if o.TokenAudience != "" {
		args = append(args, flag(flagname.TokenAudience, o.TokenAudience))
	}
	if o.TokenExpiration != 0 {
		args = append(args, flag(flagname.TokenExpiration, strconv.FormatInt(o.TokenExpiration, 10)))
	}
	if o.AWSDefaultRegion != "" {
		args = append(args, flag(flagname.AWSDefaultRegion, o.AWSDefaultRegion))
	}
	if o.STSRegionalEndpoint {
		args = append(args, flag(flagname.STSRegionalEndpoint, "true"))
	}
	if o.WatchConfigMap {
		args = append(args, flag(flagname.WatchConfigMap, "true"))
	}
	if o.PodIdentityAssociations != "" {
		args = append(args, flag(flagname.WatchPodIdentityAssociations, o.PodIdentityAssociations))
	}
	if o.FSGroup > 0 {
		args = append(args, flag(flagname.FSGroup, strconv.FormatInt(o.FSGroup, 10)))
	}
	if o.ServiceAccountRegion {
		args = append(args, flag(flagname.ServiceAccountRegion, "true"))
	}
	if o.LookupLive {
		args = append(args, flag(flagname.ServiceAccountLookup, "live"))
	}
	return args
}

func webhookDeployment(o WebhookOptions, labels map[string]string) *appsv1.Deployment {
	var mounts []corev1.VolumeMount
	var volumes []corev1.Volume
	if o.TLSSecretName != "" {
		mounts = append(mounts, corev1.VolumeMount{Name: "cert", MountPath: webhookCertMountPath, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "cert", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: o.TLSSecretName},
		}})
	}
	metricsGet := corev1.HTTPGetAction{Port: intstr.FromString(MetricsPortName)}
	maxUnavailable := intstr.FromInt32(0)
	podSC := podSecurityContext()
	podSC.RunAsNonRoot = ptr(true)
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(o.Name, o.Namespace, labels),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(o.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelName: o.Name}},
			// A new replica is ready before an old one goes: pods are never admitted unmutated
			// for want of a webhook during a rollout.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: copyMap(labels)},
				Spec: corev1.PodSpec{
					ServiceAccountName: o.Name,
					SecurityContext:    podSC,
					Containers: []corev1.Container{{
						Name:            WebhookContainerName,
						Image:           o.Image,
						ImagePullPolicy: o.ImagePullPolicy,
						Args:            webhookArgs(o),
						Ports: []corev1.ContainerPort{
							{Name: "https", ContainerPort: o.Port, Protocol: corev1.ProtocolTCP},
							{Name: MetricsPortName, ContainerPort: o.MetricsPort, Protocol: corev1.ProtocolTCP},
						},
						VolumeMounts: mounts,
						SecurityContext: &corev1.SecurityContext{
							RunAsUser:                ptr(int64(webhookUser)),
							RunAsGroup:               ptr(int64(webhookUser)),
							RunAsNonRoot:             ptr(true),
							ReadOnlyRootFilesystem:   ptr(true),
							AllowPrivilegeEscalation: ptr(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
						LivenessProbe:  httpGetProbe(metricsGet, "/healthz", 3),
						ReadinessProbe: httpGetProbe(metricsGet, "/readyz", 1),
					}},
					Volumes: volumes,
				},
			},
		},
	}
	ApplyPodOptions(&d.Spec.Template, o.Pod, WebhookContainerName)
	return d
}

func webhookConfiguration(o WebhookOptions, meta metav1.ObjectMeta) *admissionregistrationv1.MutatingWebhookConfiguration {
	if o.CAInjectFrom != "" {
		meta.Annotations = map[string]string{"cert-manager.io/inject-ca-from": o.CAInjectFrom}
	}
	path := "/mutate" // webhook.MutatePath; package webhook is not a dependency of the renderer
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: meta,
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: WebhookName,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service:  &admissionregistrationv1.ServiceReference{Namespace: o.Namespace, Name: o.Name, Path: &path, Port: ptr(o.ServicePort)},
				CABundle: o.CABundle,
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			FailurePolicy:           ptr(admissionregistrationv1.Ignore),
			SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr(o.TimeoutSeconds),
			NamespaceSelector:       o.NamespaceSelector,
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: WebhookSkipLabel, Operator: metav1.LabelSelectorOpDoesNotExist,
			}}},
		}},
	}
}

// PlaceholderWebhookImage is the pod identity webhook image in the checked-in template.
const PlaceholderWebhookImage = "%POD_IDENTITY_WEBHOOK_IMAGE%"

// WebhookTemplate is the pod identity webhook with default options (self-managed certificates)
// and a placeholder for the image: the checked-in deploy/pod-identity-webhook/pod-identity-webhook.yaml.
func WebhookTemplate() ([]byte, error) {
	y, err := YAML(renderWebhook(WebhookOptions{Image: PlaceholderWebhookImage}.withDefaults()))
	if err != nil {
		return nil, err
	}
	return []byte(templateHeader + string(y)), nil
}
