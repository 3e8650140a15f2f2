package rbac

import (
	"context"
	"errors"
	"fmt"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// ErrNoImpersonationRole is wrapped by the error ListAccess and Revoke return when the
// impersonation ClusterRole does not exist.
var ErrNoImpersonationRole = errors.New("rbac: the impersonation ClusterRole does not exist")

// ErrUnrestrictedImpersonation is wrapped by the error Revoke returns when the impersonation
// ClusterRole lets the connector impersonate every user (a users rule without resourceNames): no
// single ARN can be taken out of it.
var ErrUnrestrictedImpersonation = errors.New("rbac: the impersonation ClusterRole allows every user")

// AccessOptions select the impersonation ClusterRole of ListAccess and Revoke.
type AccessOptions struct {
	// Name is the impersonation ClusterRole (default DefaultImpersonationName; the seed's
	// connector-additional-binding.yaml names it "eks-connector-service").
	Name string
	// DryRun makes Revoke send every write with dryRun=All: the API server validates it and
	// nothing is stored.
	DryRun bool
}

func (o AccessOptions) name() string {
	if o.Name == "" {
		return DefaultImpersonationName
	}
	return o.Name
}

// BindingRef names a binding that gives an ARN rights.
type BindingRef struct {
	// Kind is ClusterRoleBinding or RoleBinding; Namespace is set for RoleBindings; Name is the
	// binding's name.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// RoleRef is the bound role as "ClusterRole/<name>" or "Role/<name>".
	RoleRef string `json:"roleRef"`
}

// String is "ClusterRoleBinding/<name>" or "RoleBinding/<namespace>/<name>".
func (b BindingRef) String() string {
	if b.Namespace != "" {
		return b.Kind + "/" + b.Namespace + "/" + b.Name
	}
	return b.Kind + "/" + b.Name
}

// Access is one ARN the connector may impersonate and the bindings naming it as a user.
type Access struct {
	// ARN is the impersonated user name, exactly as the ClusterRole's resourceNames hold it.
	ARN string `json:"arn"`
	// Bindings give the ARN its rights; none means the console reaches the cluster as this ARN
	// but may read nothing beyond what every authenticated user may.
	Bindings []BindingRef `json:"bindings"`
}

// AccessList is who can reach the cluster through the connector proxy.
type AccessList struct {
	// Role is the impersonation ClusterRole read.
	Role string `json:"role"`
	// ResourceVersion is the ClusterRole's resourceVersion when it was read.
	ResourceVersion string `json:"resourceVersion"`
	// Unrestricted is true when a rule of the ClusterRole allows impersonating any user (no
	// resourceNames): then every IAM principal with eks:AccessKubernetesApi reaches the cluster.
	Unrestricted bool `json:"unrestricted"`
	// Entries are the impersonable ARNs, sorted.
	Entries []Access `json:"entries"`
}

// impersonatesUsers reports whether the rule grants impersonate on users of the core group.
func impersonatesUsers(r rbacv1.PolicyRule) bool {
	core := slices.Contains(r.APIGroups, "") || slices.Contains(r.APIGroups, "*")
	users := slices.Contains(r.Resources, "users") || slices.Contains(r.Resources, "*")
	verb := slices.Contains(r.Verbs, "impersonate") || slices.Contains(r.Verbs, "*")
	return core && users && verb
}

// impersonable returns the ARNs the role's rules allow and whether a rule allows every user.
func impersonable(role *rbacv1.ClusterRole) (arns []string, unrestricted bool) {
	for _, r := range role.Rules {
		if !impersonatesUsers(r) {
			continue
		}
		if len(r.ResourceNames) == 0 {
			unrestricted = true
			continue
		}
		arns = append(arns, r.ResourceNames...)
	}
	slices.Sort(arns)
	return slices.Compact(arns), unrestricted
}

func userSubject(s rbacv1.Subject, arn string) bool {
	return s.Kind == rbacv1.UserKind && s.Name == arn
}

// ListAccess reads the impersonation ClusterRole and every ClusterRoleBinding and RoleBinding
// naming one of its ARNs as a user subject.
func ListAccess(ctx context.Context, client kubernetes.Interface, opts AccessOptions) (*AccessList, error) {
	role, err := client.RbacV1().ClusterRoles().Get(ctx, opts.name(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: ClusterRole %s not found (is the connector's RBAC applied? name it with --impersonation-role)", ErrNoImpersonationRole, opts.name())
	}
	if err != nil {
		return nil, fmt.Errorf("rbac: reading ClusterRole %s: %w", opts.name(), err)
	}
	arns, unrestricted := impersonable(role)
	list := &AccessList{Role: role.Name, ResourceVersion: role.ResourceVersion, Unrestricted: unrestricted}
	crbs, err := client.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("rbac: listing ClusterRoleBindings: %w", err)
	}
	rbs, err := client.RbacV1().RoleBindings(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("rbac: listing RoleBindings: %w", err)
	}
	for _, arn := range arns {
		a := Access{ARN: arn}
		for _, b := range crbs.Items {
			if slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return userSubject(s, arn) }) {
				a.Bindings = append(a.Bindings, BindingRef{Kind: "ClusterRoleBinding", Name: b.Name, RoleRef: b.RoleRef.Kind + "/" + b.RoleRef.Name})
			}
		}
		for _, b := range rbs.Items {
			if slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return userSubject(s, arn) }) {
				a.Bindings = append(a.Bindings, BindingRef{Kind: "RoleBinding", Namespace: b.Namespace, Name: b.Name, RoleRef: b.RoleRef.Kind + "/" + b.RoleRef.Name})
			}
		}
		list.Entries = append(list.Entries, a)
	}
	return list, nil
}

// RevokeResult says what Revoke changed.
type RevokeResult struct {
	// RoleUpdated is true when the ARN was taken out of the impersonation ClusterRole.
	RoleUpdated bool
	// Deleted are bindings whose only subject was the ARN; Trimmed are bindings that keep their
	// other subjects.
	Deleted, Trimmed []BindingRef
	// DryRun is true when nothing was stored.
	DryRun bool
	// RoleManagedBy is the impersonation ClusterRole's app.kubernetes.io/managed-by label ("Helm"
	// for the chart, "ekslink" for the renderer and access grant): whoever renders the role must
	// drop the ARN too (the chart's grantedARNs, the renderer's ARNs), or the next install puts it
	// back.
	RoleManagedBy string
}

// Changed reports whether Revoke wrote (or, dry run, would write) anything.
func (r *RevokeResult) Changed() bool {
	return r.RoleUpdated || len(r.Deleted) > 0 || len(r.Trimmed) > 0
}

// Revoke takes arn out of the impersonation ClusterRole's resourceNames (an update carrying the
// resourceVersion it read, retried on conflict; a rule left without names is removed, since an
// empty resourceNames would allow every user), then deletes the bindings whose only user subject
// is arn and trims it from the others (each write preconditioned on the object read). The
// ClusterRole goes first: the proxy loses the ARN before its rights are taken apart. Revoking an
// ARN that is neither impersonable nor bound changes nothing, so a re-run makes no write.
func Revoke(ctx context.Context, client kubernetes.Interface, arn string, opts AccessOptions) (*RevokeResult, error) {
	if arn == "" {
		return nil, fmt.Errorf("%w: no ARN to revoke", ErrInvalidOptions)
	}
	res := &RevokeResult{DryRun: opts.DryRun}
	var dry []string
	if opts.DryRun {
		dry = []string{metav1.DryRunAll}
	}
	crs := client.RbacV1().ClusterRoles()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		role, err := crs.Get(ctx, opts.name(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%w: ClusterRole %s not found", ErrNoImpersonationRole, opts.name())
		}
		if err != nil {
			return err
		}
		res.RoleManagedBy = role.Labels[LabelManagedBy]
		if _, unrestricted := impersonable(role); unrestricted {
			return fmt.Errorf("%w: ClusterRole %s has a users rule without resourceNames; list the ARNs it should allow (ekslink access grant) instead of revoking one", ErrUnrestrictedImpersonation, role.Name)
		}
		rules := make([]rbacv1.PolicyRule, 0, len(role.Rules))
		changed := false
		for _, r := range role.Rules {
			if impersonatesUsers(r) && slices.Contains(r.ResourceNames, arn) {
				changed = true
				r.ResourceNames = slices.DeleteFunc(slices.Clone(r.ResourceNames), func(n string) bool { return n == arn })
				if len(r.ResourceNames) == 0 {
					continue
				}
			}
			rules = append(rules, r)
		}
		if !changed {
			return nil
		}
		role.Rules = rules // role carries the resourceVersion read: a concurrent write conflicts
		if _, err := crs.Update(ctx, role, metav1.UpdateOptions{DryRun: dry}); err != nil {
			return err
		}
		res.RoleUpdated = true
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("rbac: revoking %s in ClusterRole %s: %w", arn, opts.name(), err)
	}
	if err := revokeClusterRoleBindings(ctx, client, arn, dry, res); err != nil {
		return res, err
	}
	return res, revokeRoleBindings(ctx, client, arn, dry, res)
}

func withoutUser(subjects []rbacv1.Subject, arn string) []rbacv1.Subject {
	return slices.DeleteFunc(slices.Clone(subjects), func(s rbacv1.Subject) bool { return userSubject(s, arn) })
}

func deleteOptions(uid types.UID, rv string, dry []string) metav1.DeleteOptions {
	return metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}, DryRun: dry}
}

func revokeClusterRoleBindings(ctx context.Context, client kubernetes.Interface, arn string, dry []string, res *RevokeResult) error {
	api := client.RbacV1().ClusterRoleBindings()
	list, err := api.List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("rbac: listing ClusterRoleBindings: %w", err)
	}
	for i := range list.Items {
		b := &list.Items[i]
		ref := BindingRef{Kind: "ClusterRoleBinding", Name: b.Name, RoleRef: b.RoleRef.Kind + "/" + b.RoleRef.Name}
		err := revokeFromBinding(arn, ref, b.Subjects, res,
			func() error { return api.Delete(ctx, b.Name, deleteOptions(b.UID, b.ResourceVersion, dry)) },
			func(rest []rbacv1.Subject) error {
				b.Subjects = rest
				_, err := api.Update(ctx, b, metav1.UpdateOptions{DryRun: dry})
				return err
			})
		if err != nil {
			return err
		}
	}
	return nil
}

func revokeRoleBindings(ctx context.Context, client kubernetes.Interface, arn string, dry []string, res *RevokeResult) error {
	list, err := client.RbacV1().RoleBindings(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("rbac: listing RoleBindings: %w", err)
	}
	for i := range list.Items {
		b := &list.Items[i]
		api := client.RbacV1().RoleBindings(b.Namespace)
		ref := BindingRef{Kind: "RoleBinding", Namespace: b.Namespace, Name: b.Name, RoleRef: b.RoleRef.Kind + "/" + b.RoleRef.Name}
		err := revokeFromBinding(arn, ref, b.Subjects, res,
			func() error { return api.Delete(ctx, b.Name, deleteOptions(b.UID, b.ResourceVersion, dry)) },
			func(rest []rbacv1.Subject) error {
				b.Subjects = rest
				_, err := api.Update(ctx, b, metav1.UpdateOptions{DryRun: dry})
				return err
			})
		if err != nil {
			return err
		}
	}
	return nil
}

// revokeFromBinding takes arn out of one binding's subjects: a binding that names nobody else is
// deleted (with its UID and resourceVersion as preconditions), any other is updated without it,
// and one that does not name arn is left alone. ClusterRoleBindings and RoleBindings differ only
// in their clients, which del and update close over.
func revokeFromBinding(arn string, ref BindingRef, subjects []rbacv1.Subject, res *RevokeResult, del func() error, update func(rest []rbacv1.Subject) error) error {
	rest := withoutUser(subjects, arn)
	if len(rest) == len(subjects) {
		return nil
	}
	if len(rest) == 0 {
		if err := del(); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("rbac: deleting %s: %w", ref, err)
		}
		res.Deleted = append(res.Deleted, ref)
		return nil
	}
	if err := update(rest); err != nil {
		return fmt.Errorf("rbac: removing %s from %s: %w (re-run to retry)", arn, ref, err)
	}
	res.Trimmed = append(res.Trimmed, ref)
	return nil
}
