package awsauth_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/eksauth/awsauth"
	"github.com/ekslink/ekslink/envtest"
)

func TestMain(m *testing.M) { envtest.Main(m) }

const (
	nodeRole  = "arn:aws:iam::111122223333:role/eks-node-group-1"
	adminRole = "arn:aws:iam::111122223333:role/admin"
	ciRole    = "arn:aws:iam::111122223333:role/ci"
	aliceUser = "arn:aws:iam::111122223333:user/alice"
)

// existing is a typical aws-auth: a node group, an admin with an unknown field, a user, an account.
var existing = map[string]string{
	"mapRoles": `- rolearn: arn:aws:iam::111122223333:role/eks-node-group-1
  username: system:node:{{EC2PrivateDNSName}}
  groups:
    - system:bootstrappers
    - system:nodes
- rolearn: arn:aws:iam::111122223333:role/admin
  username: admin:{{SessionName}}
  userid: AROAEXAMPLE
  groups:
    - system:masters
`,
	"mapUsers":    "- userarn: arn:aws:iam::111122223333:user/alice\n  username: alice\n  groups: [viewers]\n",
	"mapAccounts": "- \"444455556666\"\n",
}

func TestMalformedDataIsReported(t *testing.T) {
	for name, data := range map[string]map[string]string{
		"bad YAML":             {"mapRoles": "- rolearn: x\n  groups: [a\n"},
		"not a list":           {"mapRoles": "rolearn: x\n"},
		"account not a string": {"mapAccounts": "- {a: b}\n"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := awsauth.ParseData(data); !errors.Is(err, awsauth.ErrMalformed) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// editorIn returns an editor of an aws-auth ConfigMap in a fresh namespace of the shared control plane.
func editorIn(t *testing.T) (*awsauth.Editor, *envtest.Environment, string) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	return awsauth.NewEditor(env.Client, awsauth.Options{Namespace: ns}), env, ns
}

func seed(t *testing.T, env *envtest.Environment, ns string, data map[string]string) *corev1.ConfigMap {
	t.Helper()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: awsauth.Name, Namespace: ns, Annotations: map[string]string{"example.com/owner": "platform"}, Labels: map[string]string{"team": "platform"}},
		Data:       map[string]string{"other-key": "kept as is"},
	}
	for k, v := range data {
		cm.Data[k] = v
	}
	out, err := env.Client.CoreV1().ConfigMaps(ns).Create(envtest.Context(t), cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func current(t *testing.T, env *envtest.Environment, ns string) *corev1.ConfigMap {
	t.Helper()
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(envtest.Context(t), awsauth.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func TestSecondIdenticalUpsertDoesNotWrite(t *testing.T) {
	ed, env, ns := editorIn(t)
	seed(t, env, ns, existing)
	ctx := envtest.Context(t)
	m := awsauth.RoleMapping{RoleARN: ciRole, Username: "ci", Groups: []string{"deployers"}}
	first, err := ed.UpsertRole(ctx, m, awsauth.EditOptions{})
	if err != nil || !first.Changed {
		t.Fatalf("first upsert: %+v, %v", first, err)
	}
	rv := current(t, env, ns).ResourceVersion
	second, err := ed.UpsertRole(ctx, m, awsauth.EditOptions{})
	if err != nil || second.Changed {
		t.Fatalf("second upsert: %+v, %v", second, err)
	}
	if got := current(t, env, ns).ResourceVersion; got != rv {
		t.Fatalf("resourceVersion changed from %s to %s: a write happened", rv, got)
	}
}

func TestMalformedConfigMapIsLeftUntouched(t *testing.T) {
	ed, env, ns := editorIn(t)
	bad := map[string]string{"mapRoles": "- rolearn: " + nodeRole + "\n  groups: [system:nodes\n", "mapUsers": existing["mapUsers"]}
	before := seed(t, env, ns, bad)
	_, err := ed.UpsertRole(envtest.Context(t), awsauth.RoleMapping{RoleARN: ciRole, Username: "ci"}, awsauth.EditOptions{})
	if !errors.Is(err, awsauth.ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	after := current(t, env, ns)
	if after.ResourceVersion != before.ResourceVersion || after.Data["mapRoles"] != bad["mapRoles"] {
		t.Fatalf("the malformed ConfigMap was written")
	}
}

func TestUpsertHelper(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	// The package-level helper edits kube-system/aws-auth itself.
	t.Cleanup(func() {
		_ = env.Client.CoreV1().ConfigMaps(awsauth.Namespace).Delete(context.Background(), awsauth.Name, metav1.DeleteOptions{})
	})
	if _, err := awsauth.Upsert(ctx, env.Client, awsauth.RoleMapping{RoleARN: adminRole, Username: "admin", Groups: []string{awsauth.GroupMasters}}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().ConfigMaps(awsauth.Namespace).Get(ctx, awsauth.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		t.Fatal("not created")
	}
}

func BenchmarkUpsertRole(b *testing.B) {
	base, _ := awsauth.ParseData(existing)
	for i := range 200 {
		_, _, _ = base.UpsertRole(awsauth.RoleMapping{RoleARN: fmt.Sprintf("arn:aws:iam::111122223333:role/r%d", i), Username: "u", Groups: []string{"g"}})
	}
	orig := base.Clone()
	b.ReportAllocs()
	for b.Loop() {
		c := orig.Clone()
		if _, _, err := c.UpsertRole(awsauth.RoleMapping{RoleARN: ciRole, Username: "ci", Groups: []string{"deployers"}}); err != nil {
			b.Fatal(err)
		}
		_ = c.Data(orig)
		_ = c.Problems()
	}
}
