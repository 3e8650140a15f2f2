package manifest

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ekslink/ekslink/manifest/flagname"
)

// DefaultPodIdentityAssociations is the associations ConfigMap the web identity backend reads
// by default (podidentity/association's DefaultNamespace and DefaultName).
const DefaultPodIdentityAssociations = "kube-system/ekslink-pod-identity-associations"

// PodIdentityWebIdentity selects the agent's web identity backend (podidentity/webidentity,
// --backend=web-identity): clusters that are not EKS, STS AssumeRoleWithWebIdentity with the
// pod's own token, associations from a ConfigMap.
type PodIdentityWebIdentity struct {
	// Associations is "<namespace>/<name>" of the associations ConfigMap (default
	// DefaultPodIdentityAssociations); its namespace must exist.
	Associations string
	// PerPodSessions passes --per-pod-sessions: one STS session per pod instead of one per
	// service account and role.
	PerPodSessions bool
}

// podIdentityWebIdentity adds the web identity backend to the agent: its arguments, NODE_NAME
// from the downward API, a ServiceAccount with its token mounted, and the least RBAC the backend
// needs: get, list and watch of pods (the informer lists the node's pods with a spec.nodeName
// field selector, which RBAC cannot restrict, and GETs a pod it has not seen yet) and of the one
// associations ConfigMap by name. The API server's discovery document and JWKS need nothing: the
// bootstrap ClusterRoleBinding system:service-account-issuer-discovery grants them to every
// service account. Nothing else, in particular no serviceaccounts/token.
func podIdentityWebIdentity(o PodIdentityAgentOptions, labels map[string]string, spec *corev1.PodSpec) []runtime.Object {
	w := o.WebIdentity
	c := &spec.Containers[0]
	c.Args = append(c.Args, "--"+flagname.Backend+"=web-identity", "--"+flagname.AssociationsConfigMap+"="+w.Associations)
	if w.PerPodSessions {
		c.Args = append(c.Args, "--"+flagname.PerPodSessions)
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}})
	spec.ServiceAccountName = o.Name
	spec.AutomountServiceAccountToken = ptr(true)

	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: o.Name, Namespace: o.Namespace}}
	clusterMeta := objectMeta(o.Name, "", labels)
	objs := []runtime.Object{
		&corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: objectMeta(o.Name, o.Namespace, labels)},
		&rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}, ObjectMeta: clusterMeta,
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}}},
		&rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"}, ObjectMeta: clusterMeta,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: o.Name}, Subjects: subject},
	}
	return append(objs, configMapReader(w.Associations, o.Name+"-pod-identity-associations", labels, subject)...)
}
