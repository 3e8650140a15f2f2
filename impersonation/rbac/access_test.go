package rbac_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/impersonation"
	"github.com/ekslink/ekslink/impersonation/rbac"
	"github.com/ekslink/ekslink/manifest"
)

const seedARN = "arn:aws:iam::1234567890:user/Alice"

// createSeed creates the objects of a seed 001 YAML file (testdata) as published, with r's
// substitutions, and deletes them when the test ends.
func createSeed(t *testing.T, env *envtest.Environment, file string, r *strings.Replacer) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Decode([]byte(r.Replace(string(raw))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, api := envtest.Context(t), env.Client.RbacV1()
	for _, o := range objs {
		var err error
		name, ns := o.GetName(), o.GetNamespace()
		switch o.GetKind() {
		case "ClusterRole":
			var v rbacv1.ClusterRole
			if err = runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v); err == nil {
				_, err = api.ClusterRoles().Create(ctx, &v, metav1.CreateOptions{})
				t.Cleanup(func() { _ = api.ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{}) })
			}
		case "ClusterRoleBinding":
			var v rbacv1.ClusterRoleBinding
			if err = runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v); err == nil {
				_, err = api.ClusterRoleBindings().Create(ctx, &v, metav1.CreateOptions{})
				t.Cleanup(func() { _ = api.ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{}) })
			}
		case "Role":
			var v rbacv1.Role
			if err = runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v); err == nil {
				_, err = api.Roles(ns).Create(ctx, &v, metav1.CreateOptions{})
			}
		case "RoleBinding":
			var v rbacv1.RoleBinding
			if err = runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v); err == nil {
				_, err = api.RoleBindings(ns).Create(ctx, &v, metav1.CreateOptions{})
			}
		}
		if err != nil {
			t.Fatalf("%s: %s %s: %v", file, o.GetKind(), name, err)
		}
	}
}

// TestAccessListAndRevokeOnTheSeedRBAC starts from the RBAC seed 001 (the AWS Containers blog post
// "Connect any Kubernetes cluster to Amazon EKS", testdata) has administrators apply:
// connector-additional-binding.yaml lets the connector impersonate Alice, and
// console-restricted-access.yaml binds her (a ClusterRoleBinding and a RoleBinding). Bob is added
// to the impersonation role and to the ClusterRoleBinding. ListAccess shows both with their
// bindings; Revoke of Alice takes her out of the role, deletes the RoleBinding she alone held and
// trims the shared binding; the connector's proxy (impersonation.NewHandler, against the real API
// server) then refuses her while Bob still gets through; a second Revoke writes nothing; revoking
// Bob, the last name, removes the rule instead of leaving an empty resourceNames (which would allow
// every user).
func TestAccessListAndRevokeOnTheSeedRBAC(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	alice := "arn:aws:iam::111122223333:user/Alice-" + ns
	bob := "arn:aws:iam::111122223333:role/Bob-" + ns
	env.CreateServiceAccount(t, ns, "eks-connector")
	role := "eks-connector-service-" + ns
	createSeed(t, env, "connector-additional-binding.yaml", strings.NewReplacer(
		`- "`+seedARN+`"`, `- "`+alice+`"`+"\n      - \""+bob+`"`,
		"name: eks-connector-service", "name: "+role,
		"namespace: eks-connector", "namespace: "+ns,
	))
	crb := "eks-console-dashboard-restricted-access-clusterrole-" + ns + "-binding"
	createSeed(t, env, "console-restricted-access.yaml", strings.NewReplacer(
		`name: "`+seedARN+`"`+"\n  apiGroup: rbac.authorization.k8s.io\nroleRef:\n  kind: ClusterRole",
		`name: "`+alice+`"`+"\n  apiGroup: rbac.authorization.k8s.io\n- kind: User\n  name: \""+bob+"\"\n  apiGroup: rbac.authorization.k8s.io\nroleRef:\n  kind: ClusterRole",
		`"`+seedARN+`"`, `"`+alice+`"`,
		"name: eks-console-dashboard-restricted-access-clusterrole", "name: eks-console-dashboard-restricted-access-clusterrole-"+ns,
		"namespace: default", "namespace: "+ns,
	))
	opts := rbac.AccessOptions{Name: role}

	list, err := rbac.ListAccess(ctx, env.Client, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []rbac.Access{
		{ARN: alice, Bindings: []rbac.BindingRef{
			{Kind: "ClusterRoleBinding", Name: crb, RoleRef: "ClusterRole/eks-console-dashboard-restricted-access-clusterrole-" + ns},
			{Kind: "RoleBinding", Namespace: ns, Name: "eks-console-dashboard-restricted-access-role-binding", RoleRef: "Role/eks-console-dashboard-restricted-access-role"},
		}},
		{ARN: bob, Bindings: []rbac.BindingRef{{Kind: "ClusterRoleBinding", Name: crb, RoleRef: "ClusterRole/eks-console-dashboard-restricted-access-clusterrole-" + ns}}},
	}
	if alice > bob {
		want[0], want[1] = want[1], want[0]
	}
	if got, w := mustJSON(t, list.Entries), mustJSON(t, want); got != w || list.Unrestricted {
		t.Fatalf("ListAccess = %s (unrestricted %v)\nwant %s", got, list.Unrestricted, w)
	}

	// The connector's proxy, holding the connector's token, as the EKS console reaches it.
	h, err := impersonation.NewHandler(impersonation.Config{Upstream: env.ConfigForToken(env.Token(t, ns, "eks-connector", nil, 0))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	proxy := httptest.NewServer(h)
	t.Cleanup(proxy.Close)
	status := func(arn string) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, proxy.URL+"/api/v1/namespaces", nil)
		req.Header.Set("x-aws-eks-identity-arn", arn)
		resp, err := proxy.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	wantStatus := func(arn string, code int) {
		t.Helper()
		eventually(t, func() error {
			if got := status(arn); got != code {
				return errors.New(arn + ": status " + http.StatusText(got) + ", want " + http.StatusText(code))
			}
			return nil
		})
	}
	wantStatus(alice, 200)
	wantStatus(bob, 200)

	// A dry run reports the same changes and stores none.
	dry, err := rbac.Revoke(ctx, env.Client, alice, rbac.AccessOptions{Name: role, DryRun: true})
	if err != nil || !dry.RoleUpdated || len(dry.Deleted) != 1 || len(dry.Trimmed) != 1 {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	if after, _ := env.Client.RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{}); after.ResourceVersion != list.ResourceVersion {
		t.Fatalf("the dry run wrote the role (resourceVersion %s -> %s)", list.ResourceVersion, after.ResourceVersion)
	}

	res, err := rbac.Revoke(ctx, env.Client, alice, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.RoleUpdated || len(res.Deleted) != 1 || res.Deleted[0].Kind != "RoleBinding" || len(res.Trimmed) != 1 || res.Trimmed[0].Name != crb {
		t.Fatalf("Revoke = %+v", res)
	}
	wantStatus(alice, http.StatusForbidden)
	if got := status(bob); got != 200 {
		t.Fatalf("Bob lost access when Alice was revoked: %d", got)
	}
	binding, err := env.Client.RbacV1().ClusterRoleBindings().Get(ctx, crb, metav1.GetOptions{})
	if err != nil || len(binding.Subjects) != 1 || binding.Subjects[0].Name != bob {
		t.Fatalf("shared binding after revoke: %+v, %v", binding, err)
	}
	if _, err := env.Client.RbacV1().RoleBindings(ns).Get(ctx, "eks-console-dashboard-restricted-access-role-binding", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Alice's RoleBinding: err = %v, want NotFound", err)
	}

	// Idempotent: nothing left to revoke, nothing written.
	before, _ := env.Client.RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{})
	again, err := rbac.Revoke(ctx, env.Client, alice, opts)
	if err != nil || again.Changed() {
		t.Fatalf("second Revoke = %+v, %v; want no change", again, err)
	}
	if after, _ := env.Client.RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{}); after.ResourceVersion != before.ResourceVersion {
		t.Fatal("the second Revoke wrote the role")
	}

	// The last name: the rule goes, it is not left to match every user.
	if _, err := rbac.Revoke(ctx, env.Client, bob, opts); err != nil {
		t.Fatal(err)
	}
	r, _ := env.Client.RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{})
	if len(r.Rules) != 0 {
		t.Fatalf("rules after revoking the last ARN: %+v", r.Rules)
	}
	wantStatus(bob, http.StatusForbidden)
	if list, err := rbac.ListAccess(ctx, env.Client, opts); err != nil || len(list.Entries) != 0 {
		t.Fatalf("ListAccess after revoking both = %+v, %v", list, err)
	}
}

// A role that allows every user (no resourceNames) cannot lose one ARN: Revoke refuses and
// ListAccess says so; a missing role is a typed error.
func TestRevokeRefusesAnUnrestrictedRole(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	name := "imp-any-" + ns
	_, err := env.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	list, err := rbac.ListAccess(ctx, env.Client, rbac.AccessOptions{Name: name})
	if err != nil || !list.Unrestricted {
		t.Fatalf("ListAccess = %+v, %v; want Unrestricted", list, err)
	}
	if _, err := rbac.Revoke(ctx, env.Client, arnA, rbac.AccessOptions{Name: name}); !errors.Is(err, rbac.ErrUnrestrictedImpersonation) {
		t.Fatalf("Revoke err = %v, want ErrUnrestrictedImpersonation", err)
	}
	for _, call := range []func() error{
		func() error {
			_, err := rbac.ListAccess(ctx, env.Client, rbac.AccessOptions{Name: "missing-" + ns})
			return err
		},
		func() error {
			_, err := rbac.Revoke(ctx, env.Client, arnA, rbac.AccessOptions{Name: "missing-" + ns})
			return err
		},
	} {
		if err := call(); !errors.Is(err, rbac.ErrNoImpersonationRole) {
			t.Fatalf("err = %v, want ErrNoImpersonationRole", err)
		}
	}
}
