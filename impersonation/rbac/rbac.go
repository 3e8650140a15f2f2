package rbac

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/ekslink/ekslink/iamarn"
	"github.com/ekslink/ekslink/manifest/apply"
)

// Defaults of the rendered objects.
const (
	// DefaultConsoleName is the base name of the console objects.
	DefaultConsoleName = "ekslink-console-read"
	// DefaultImpersonationName is the name of the impersonation ClusterRole and its binding.
	DefaultImpersonationName = "eks-connector-impersonation"
	// DefaultConnectorNamespace is the connector's namespace.
	DefaultConnectorNamespace = "eks-connector"
	// DefaultConnectorServiceAccount is the connector's service account.
	DefaultConnectorServiceAccount = "eks-connector"
	// DefaultFieldManager is the server-side apply field manager of Apply.
	DefaultFieldManager = apply.DefaultFieldManager

	// LabelManagedBy is set on every rendered object.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "ekslink"

	// ExtraARN and ExtraSessionName are the user-extra keys a proxy with user extras on sends
	// (headers Impersonate-Extra-arn and Impersonate-Extra-sessionname; impersonation.ExtrasMapper).
	ExtraARN         = "arn"
	ExtraSessionName = "sessionname"
)

// ErrInvalidOptions is wrapped by every error about the options given to a render function.
var ErrInvalidOptions = errors.New("rbac: invalid options")

// ConsoleOptions select who gets read-only console access and where.
type ConsoleOptions struct {
	// ARNs are the IAM principal ARNs, exactly as the connector impersonates them (the user name).
	// At least one is required; they are validated, sorted and deduplicated.
	ARNs []string
	// Namespaces restricts the namespaced read access to these namespaces. Empty means every
	// namespace. Nodes and namespaces can always be listed (the console needs them to navigate).
	Namespaces []string
	// Name is the base name of the objects (default DefaultConsoleName). The cluster-scoped part is
	// named Name+"-cluster".
	Name string
	// Labels are added to every object (LabelManagedBy is always set).
	Labels map[string]string
}

// ImpersonationOptions select the connector service account and the ARNs it may impersonate.
type ImpersonationOptions struct {
	// ARNs are the user names the connector may impersonate. At least one is required.
	ARNs []string
	// Namespace is the connector's namespace (default DefaultConnectorNamespace).
	Namespace string
	// ServiceAccount is the connector's service account (default DefaultConnectorServiceAccount).
	ServiceAccount string
	// Name is the ClusterRole and ClusterRoleBinding name (default DefaultImpersonationName).
	Name string
	// Labels are added to every object (LabelManagedBy is always set).
	Labels map[string]string
	// UserExtras also grants impersonate on userextras/arn and userextras/sessionname (group
	// authentication.k8s.io), for a proxy that sends them (impersonation.Config.UserExtras, the
	// connector's --user-extras). Off by default: the role is then exactly the one AWS documents
	// for the EKS Connector (impersonate on users with resourceNames), which is all a proxy
	// sending Impersonate-User alone needs.
	UserExtras bool
}

// Objects is a set of RBAC objects, in the order Apply writes them.
type Objects struct {
	// ClusterRoles are written first.
	ClusterRoles []rbacv1.ClusterRole
	// ClusterRoleBindings bind cluster-wide.
	ClusterRoleBindings []rbacv1.ClusterRoleBinding
	// Roles are namespaced roles (none are rendered today; kept for callers' own objects).
	Roles []rbacv1.Role
	// RoleBindings bind in one namespace each.
	RoleBindings []rbacv1.RoleBinding
	// Prune lists bindings an earlier render under the same name may have created that this one
	// replaces; Apply deletes them after writing the objects above, so narrowing access (cluster-wide
	// to some namespaces, fewer namespaces) takes effect. YAML cannot express deletions.
	Prune []Prune
}

// Prune selects stale bindings of ClusterRole RoleRef. Only bindings labelled
// LabelManagedBy=ManagedByValue that reference that ClusterRole are deleted.
type Prune struct {
	// RoleRef is the ClusterRole the stale bindings reference.
	RoleRef string
	// ClusterRoleBinding, when set, is deleted.
	ClusterRoleBinding string
	// RoleBinding, when set, is deleted in every namespace except KeepNamespaces.
	RoleBinding string
	// KeepNamespaces are the namespaces whose RoleBinding is current.
	KeepNamespaces []string
}

var readVerbs = []string{"get", "list", "watch"}

// consoleNamespacedRules is what the EKS console shows for workloads, without Secrets.
func consoleNamespacedRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps", "endpoints", "events", "limitranges", "persistentvolumeclaims", "podtemplates", "pods", "replicationcontrollers", "resourcequotas", "serviceaccounts", "services"}, Verbs: readVerbs},
		{APIGroups: []string{"apps"}, Resources: []string{"daemonsets", "deployments", "replicasets", "statefulsets"}, Verbs: readVerbs},
		{APIGroups: []string{"batch"}, Resources: []string{"cronjobs", "jobs"}, Verbs: readVerbs},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: readVerbs},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: readVerbs},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: readVerbs},
		{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses", "networkpolicies"}, Verbs: readVerbs},
		{APIGroups: []string{"policy"}, Resources: []string{"poddisruptionbudgets"}, Verbs: readVerbs},
		{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"rolebindings", "roles"}, Verbs: readVerbs},
		{APIGroups: []string{"autoscaling"}, Resources: []string{"horizontalpodautoscalers"}, Verbs: readVerbs},
	}
}

func consoleClusterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces", "nodes"}, Verbs: readVerbs},
	}
}

// normalizeARNs validates, sorts and deduplicates; order and duplicates in the input do not change
// the output, so repeated renders are byte-identical.
func normalizeARNs(arns []string) ([]string, error) {
	if len(arns) == 0 {
		return nil, fmt.Errorf("%w: no IAM ARNs given", ErrInvalidOptions)
	}
	out := make([]string, 0, len(arns))
	for _, a := range arns {
		a = strings.TrimSpace(a)
		if _, err := iamarn.Parse(a); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		out = append(out, a)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func checkName(kind, name string) error {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("%w: %s %q: %s", ErrInvalidOptions, kind, name, strings.Join(errs, "; "))
	}
	return nil
}

func labels(extra map[string]string) map[string]string {
	l := map[string]string{LabelManagedBy: ManagedByValue}
	for k, v := range extra {
		if k != LabelManagedBy {
			l[k] = v
		}
	}
	return l
}

func userSubjects(arns []string) []rbacv1.Subject {
	s := make([]rbacv1.Subject, len(arns))
	for i, a := range arns {
		s[i] = rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: a}
	}
	return s
}

func clusterRoleRef(name string) rbacv1.RoleRef {
	return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}
}

var (
	clusterRoleType        = metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}
	clusterRoleBindingType = metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"}
	roleType               = metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}
	roleBindingType        = metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"}
)

// ConsoleRBAC renders read-only console access for opts.ARNs.
//
// Always: ClusterRole Name+"-cluster" (get/list/watch namespaces and nodes) bound cluster-wide.
// ClusterRole Name holds the namespaced read rules; it is bound with a ClusterRoleBinding when
// opts.Namespaces is empty, otherwise with one RoleBinding per namespace (so the ARNs read nothing
// namespaced elsewhere).
func ConsoleRBAC(opts ConsoleOptions) (*Objects, error) {
	arns, err := normalizeARNs(opts.ARNs)
	if err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = DefaultConsoleName
	}
	if err := checkName("name", name+"-cluster"); err != nil {
		return nil, err
	}
	namespaces := slices.Clone(opts.Namespaces)
	slices.Sort(namespaces)
	namespaces = slices.Compact(namespaces)
	for _, ns := range namespaces {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, fmt.Errorf("%w: namespace %q: %s", ErrInvalidOptions, ns, strings.Join(errs, "; "))
		}
	}
	l := labels(opts.Labels)
	clusterName := name + "-cluster"
	objs := &Objects{
		ClusterRoles: []rbacv1.ClusterRole{
			{TypeMeta: clusterRoleType, ObjectMeta: metav1.ObjectMeta{Name: clusterName, Labels: l}, Rules: consoleClusterRules()},
			{TypeMeta: clusterRoleType, ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}, Rules: consoleNamespacedRules()},
		},
		ClusterRoleBindings: []rbacv1.ClusterRoleBinding{
			{TypeMeta: clusterRoleBindingType, ObjectMeta: metav1.ObjectMeta{Name: clusterName, Labels: l}, RoleRef: clusterRoleRef(clusterName), Subjects: userSubjects(arns)},
		},
	}
	if len(namespaces) == 0 {
		objs.ClusterRoleBindings = append(objs.ClusterRoleBindings, rbacv1.ClusterRoleBinding{
			TypeMeta: clusterRoleBindingType, ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}, RoleRef: clusterRoleRef(name), Subjects: userSubjects(arns),
		})
		objs.Prune = []Prune{{RoleRef: name, RoleBinding: name}}
	} else {
		// A cluster-wide binding left by an earlier unrestricted render would keep granting
		// everything the namespaces now restrict.
		objs.Prune = []Prune{{RoleRef: name, ClusterRoleBinding: name, RoleBinding: name, KeepNamespaces: namespaces}}
	}
	for _, ns := range namespaces {
		objs.RoleBindings = append(objs.RoleBindings, rbacv1.RoleBinding{
			TypeMeta: roleBindingType, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l}, RoleRef: clusterRoleRef(name), Subjects: userSubjects(arns),
		})
	}
	return objs, nil
}

// ImpersonationClusterRole renders the ClusterRole and ClusterRoleBinding that let the connector's
// service account impersonate exactly opts.ARNs (users, with resourceNames), and with
// opts.UserExtras also set the user extras "arn" and "sessionname". Groups, service accounts and
// UIDs cannot be impersonated.
func ImpersonationClusterRole(opts ImpersonationOptions) (*Objects, error) {
	arns, err := normalizeARNs(opts.ARNs)
	if err != nil {
		return nil, err
	}
	name, ns, sa := opts.Name, opts.Namespace, opts.ServiceAccount
	if name == "" {
		name = DefaultImpersonationName
	}
	if ns == "" {
		ns = DefaultConnectorNamespace
	}
	if sa == "" {
		sa = DefaultConnectorServiceAccount
	}
	if err := checkName("name", name); err != nil {
		return nil, err
	}
	if err := checkName("service account", sa); err != nil {
		return nil, err
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return nil, fmt.Errorf("%w: namespace %q: %s", ErrInvalidOptions, ns, strings.Join(errs, "; "))
	}
	l := labels(opts.Labels)
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: arns},
	}
	if opts.UserExtras {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"userextras/" + ExtraARN, "userextras/" + ExtraSessionName}, Verbs: []string{"impersonate"}})
	}
	return &Objects{
		ClusterRoles: []rbacv1.ClusterRole{{
			TypeMeta:   clusterRoleType,
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
			Rules:      rules,
		}},
		ClusterRoleBindings: []rbacv1.ClusterRoleBinding{{
			TypeMeta:   clusterRoleBindingType,
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
			RoleRef:    clusterRoleRef(name),
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa}},
		}},
	}, nil
}

// Merge returns a new set holding o's objects followed by others'.
func (o *Objects) Merge(others ...*Objects) *Objects {
	out := &Objects{}
	for _, s := range append([]*Objects{o}, others...) {
		if s == nil {
			continue
		}
		out.ClusterRoles = append(out.ClusterRoles, s.ClusterRoles...)
		out.ClusterRoleBindings = append(out.ClusterRoleBindings, s.ClusterRoleBindings...)
		out.Roles = append(out.Roles, s.Roles...)
		out.RoleBindings = append(out.RoleBindings, s.RoleBindings...)
		out.Prune = append(out.Prune, s.Prune...)
	}
	return out
}

// List returns every object, roles before bindings, with apiVersion and kind set.
func (o *Objects) List() []any {
	out := appendTyped(nil, o.ClusterRoles, func(c *rbacv1.ClusterRole) { c.TypeMeta = clusterRoleType })
	out = appendTyped(out, o.Roles, func(c *rbacv1.Role) { c.TypeMeta = roleType })
	out = appendTyped(out, o.ClusterRoleBindings, func(c *rbacv1.ClusterRoleBinding) { c.TypeMeta = clusterRoleBindingType })
	return appendTyped(out, o.RoleBindings, func(c *rbacv1.RoleBinding) { c.TypeMeta = roleBindingType })
}

// appendTyped appends a copy of each item, with its apiVersion and kind set by typed, to out.
func appendTyped[T any](out []any, items []T, typed func(*T)) []any {
	for _, c := range items {
		typed(&c)
		out = append(out, &c)
	}
	return out
}

// manifest is the JSON of obj without server-populated noise (creationTimestamp: null).
func manifest(obj any) ([]byte, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	return json.Marshal(m)
}

// YAML renders the objects as a multi-document YAML stream for kubectl apply -f.
func (o *Objects) YAML() ([]byte, error) {
	var b strings.Builder
	for i, obj := range o.List() {
		j, err := manifest(obj)
		if err != nil {
			return nil, err
		}
		y, err := yaml.JSONToYAML(j)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return []byte(b.String()), nil
}

// ApplyOptions tune Apply (FieldManager defaults to DefaultFieldManager). It is apply.Options.
type ApplyOptions = apply.Options

// ApplyError names the object that could not be applied or pruned. It is apply.Error, the type
// every ekslink apply returns, so errors.As with *ApplyError also matches errors of manifest.Apply.
type ApplyError = apply.Error

// Apply writes the objects with server-side apply through package manifest/apply (forcing
// ownership of the fields it sets, so a binding's subjects become exactly the rendered ones). Roles
// are written before bindings; then the stale bindings of objs.Prune are deleted. It stops at the
// first error, returned as *ApplyError.
func Apply(ctx context.Context, cfg *rest.Config, objs *Objects, opts ApplyOptions) error {
	if objs == nil {
		return nil
	}
	if opts.FieldManager == "" {
		opts.FieldManager = DefaultFieldManager
	}
	var us []*unstructured.Unstructured
	for _, obj := range objs.List() {
		data, err := manifest(obj)
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return err
		}
		us = append(us, u)
	}
	if err := apply.Apply(ctx, cfg, us, opts); err != nil {
		return err
	}
	if len(objs.Prune) == 0 {
		return nil
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("rbac: client: %w", err)
	}
	return prune(ctx, client, objs.Prune, opts.DryRun)
}

// managedBinding reports whether a binding is one this package rendered for ClusterRole roleRef.
func managedBinding(l map[string]string, ref rbacv1.RoleRef, roleRef string) bool {
	return l[LabelManagedBy] == ManagedByValue && ref.Kind == "ClusterRole" && ref.Name == roleRef
}

func prune(ctx context.Context, client kubernetes.Interface, prunes []Prune, dryRun bool) error {
	rbac := client.RbacV1()
	del := func(uid types.UID) metav1.DeleteOptions {
		do := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}
		if dryRun {
			do.DryRun = []string{metav1.DryRunAll}
		}
		return do
	}
	gone := func(err error) bool { return err == nil || apierrors.IsNotFound(err) }
	for _, p := range prunes {
		if p.ClusterRoleBinding != "" {
			b, err := rbac.ClusterRoleBindings().Get(ctx, p.ClusterRoleBinding, metav1.GetOptions{})
			if err == nil && managedBinding(b.Labels, b.RoleRef, p.RoleRef) {
				err = rbac.ClusterRoleBindings().Delete(ctx, b.Name, del(b.UID))
			}
			if !gone(err) {
				return &ApplyError{Kind: "ClusterRoleBinding", Name: p.ClusterRoleBinding, Err: fmt.Errorf("removing the stale binding: %w", err)}
			}
		}
		if p.RoleBinding == "" {
			continue
		}
		list, err := rbac.RoleBindings(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
			LabelSelector: LabelManagedBy + "=" + ManagedByValue,
			FieldSelector: "metadata.name=" + p.RoleBinding,
		})
		if err != nil {
			return &ApplyError{Kind: "RoleBinding", Name: p.RoleBinding, Err: fmt.Errorf("listing stale bindings: %w", err)}
		}
		for _, b := range list.Items {
			if b.Name != p.RoleBinding || slices.Contains(p.KeepNamespaces, b.Namespace) || !managedBinding(b.Labels, b.RoleRef, p.RoleRef) {
				continue
			}
			if err := rbac.RoleBindings(b.Namespace).Delete(ctx, b.Name, del(b.UID)); !gone(err) {
				return &ApplyError{Kind: "RoleBinding", Namespace: b.Namespace, Name: b.Name, Err: fmt.Errorf("removing the stale binding: %w", err)}
			}
		}
	}
	return nil
}
