package main

import (
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
)

// access grant --apply, then access list shows the ARNs with their bindings, access revoke takes
// one out (role and bindings) and a second revoke writes nothing.
func TestAccessListAndRevokeCommands(t *testing.T) {
	isolateAWS(t, "us-west-2")
	env := useKubeconfig(t)
	ctx := envtest.Context(t)
	alice, bob := "arn:aws:iam::111122223333:user/Alice", "arn:aws:iam::111122223333:role/Bob"
	if _, err := runEKS(t, "access", "grant", "--arn", alice, "--arn", bob, "--namespace", "default", "--apply"); err != nil {
		t.Fatal(err)
	}
	out, err := runEKS(t, "access", "list")
	if err != nil || !strings.Contains(out, alice+"\tClusterRoleBinding/ekslink-console-read-cluster -> ClusterRole/ekslink-console-read-cluster, RoleBinding/default/ekslink-console-read -> ClusterRole/ekslink-console-read") || !strings.Contains(out, bob) {
		t.Fatalf("list: %s %v", out, err)
	}
	if out, err := runEKS(t, "access", "list", "-o", "json"); err != nil || !strings.Contains(out, `"arn": "`+alice+`"`) {
		t.Fatalf("list -o json: %s %v", out, err)
	}
	if out, err := runEKS(t, "access", "revoke", alice, "--dry-run"); err != nil || !strings.Contains(out, "dry run: removed "+alice+" from ClusterRole eks-connector-impersonation") {
		t.Fatalf("revoke --dry-run: %s %v", out, err)
	}
	out, errOut, err := runEKSErr(t, "access", "revoke", alice)
	if !strings.Contains(errOut, "note: ClusterRole eks-connector-impersonation is managed by ekslink") {
		t.Errorf("no note that the role is rendered by ekslink: %q", errOut)
	}
	if err != nil || !strings.Contains(out, "removed "+alice+" from ClusterRole eks-connector-impersonation") || !strings.Contains(out, "removed "+alice+" from RoleBinding/default/ekslink-console-read") {
		t.Fatalf("revoke: %s %v", out, err)
	}
	cr, err := env.Client.RbacV1().ClusterRoles().Get(ctx, "eks-connector-impersonation", metav1.GetOptions{})
	if err != nil || strings.Join(cr.Rules[0].ResourceNames, ",") != bob {
		t.Fatalf("role after revoke: %+v %v", cr.Rules, err)
	}
	if out, err := runEKS(t, "access", "revoke", alice); err != nil || out != alice+": nothing to revoke\n" {
		t.Fatalf("second revoke: %q %v", out, err)
	}
	if _, err := runEKS(t, "access", "revoke", bob); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RbacV1().RoleBindings("default").Get(ctx, "ekslink-console-read", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("binding of the last ARN: %v, want deleted", err)
	}
	if out, err := runEKS(t, "access", "list"); err != nil || !strings.Contains(out, "no ARN may be impersonated") {
		t.Fatalf("list after revoking both: %s %v", out, err)
	}
}
