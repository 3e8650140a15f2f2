package manifest

import (
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// validateConfigMapRef checks a "<namespace>/<name>" reference to a ConfigMap.
func validateConfigMapRef(errs *optionErrors, field, ref string) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" {
		errs.add(optionError(field, ref, "want <namespace>/<name> of a ConfigMap, e.g. kube-system/ekslink-pod-identity-associations"))
		return
	}
	errs.dns1123Label(field+" namespace", ns)
	errs.dns1123Subdomain(field+" name", name)
}

// configMapReader renders a Role and RoleBinding, named roleName in the ConfigMap's namespace,
// that let subject get, list and watch the one ConfigMap ref ("<namespace>/<name>") by name.
func configMapReader(ref, roleName string, labels map[string]string, subject []rbacv1.Subject) []runtime.Object {
	ns, name, _ := strings.Cut(ref, "/")
	meta := objectMeta(roleName, ns, labels)
	return []runtime.Object{
		&rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}, ObjectMeta: meta,
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
				Verbs: []string{"get", "list", "watch"}, ResourceNames: []string{name}}}},
		&rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"}, ObjectMeta: meta,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: roleName}, Subjects: subject},
	}
}
