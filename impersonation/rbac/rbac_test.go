package rbac_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/impersonation"
	"github.com/ekslink/ekslink/impersonation/rbac"
	"github.com/ekslink/ekslink/manifest"
	"github.com/ekslink/ekslink/manifest/apply"
)

func TestMain(m *testing.M) { envtest.Main(m) }

const (
	arnA = "arn:aws:iam::111122223333:user/Alice"
	arnB = "arn:aws:iam::111122223333:role/Bob"
	arnC = "arn:aws:sts::111122223333:assumed-role/ConsoleViewer/carol"
)

func TestRenderRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name string
		run  func() error
	}{
		{"no ARNs for console access", func() error { _, err := rbac.ConsoleRBAC(rbac.ConsoleOptions{}); return err }},
		{"no ARNs for impersonation (never impersonate everyone)", func() error {
			_, err := rbac.ImpersonationClusterRole(rbac.ImpersonationOptions{})
			return err
		}},
		{"malformed ARN", func() error {
			_, err := rbac.ConsoleRBAC(rbac.ConsoleOptions{ARNs: []string{"arn:aws:iam::1:user/x"}})
			return err
		}},
		{"unknown partition", func() error {
			_, err := rbac.ImpersonationClusterRole(rbac.ImpersonationOptions{ARNs: []string{"arn:aws-mars:iam::111122223333:user/x"}})
			return err
		}},
		{"bad namespace", func() error {
			_, err := rbac.ConsoleRBAC(rbac.ConsoleOptions{ARNs: []string{arnA}, Namespaces: []string{"Not_A_Namespace"}})
			return err
		}},
		{"bad object name", func() error {
			_, err := rbac.ConsoleRBAC(rbac.ConsoleOptions{ARNs: []string{arnA}, Name: "UPPER"})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, rbac.ErrInvalidOptions) {
				t.Fatalf("err = %v, want ErrInvalidOptions", err)
			}
		})
	}
}

func TestImpersonationRoleGrantsExactlyTheARNs(t *testing.T) {
	for _, extras := range []bool{false, true} {
		t.Run(fmt.Sprintf("user extras %v", extras), func(t *testing.T) {
			objs, err := rbac.ImpersonationClusterRole(rbac.ImpersonationOptions{ARNs: []string{arnB, arnA, arnB}, UserExtras: extras})
			if err != nil {
				t.Fatal(err)
			}
			if len(objs.ClusterRoles) != 1 || len(objs.ClusterRoleBindings) != 1 {
				t.Fatalf("objects = %+v", objs)
			}
			rules := objs.ClusterRoles[0].Rules
			want := 1
			if extras {
				want = 2
			}
			if len(rules) != want {
				t.Fatalf("rules = %+v, want %d", rules, want)
			}
			users := rules[0]
			if strings.Join(users.Resources, ",") != "users" || strings.Join(users.ResourceNames, ",") != arnB+","+arnA || strings.Join(users.Verbs, ",") != "impersonate" {
				t.Errorf("users rule = %+v", users)
			}
			if extras {
				extra := rules[1]
				if strings.Join(extra.APIGroups, ",") != "authentication.k8s.io" || strings.Join(extra.Resources, ",") != "userextras/arn,userextras/sessionname" {
					t.Errorf("extras rule = %+v", extra)
				}
			}
			sub := objs.ClusterRoleBindings[0].Subjects
			if len(sub) != 1 || sub[0].Kind != "ServiceAccount" || sub[0].Namespace != "eks-connector" || sub[0].Name != "eks-connector" {
				t.Errorf("subjects = %+v", sub)
			}
		})
	}
}

// TestDefaultImpersonationRoleIsTheOneAWSDocuments compares the default rendering with the
// connector-additional-binding.yaml of seed 001 (the AWS Containers blog post "Connect any
// Kubernetes cluster to Amazon EKS", copied in testdata): the same rules and the same binding
// subject, so a cluster that already has the documented RBAC needs nothing new, and ours grants
// nothing more.
func TestDefaultImpersonationRoleIsTheOneAWSDocuments(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "connector-additional-binding.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	seed, err := manifest.Decode([]byte(strings.ReplaceAll(string(raw), "arn:aws:iam::1234567890:user/Alice", arnA)))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	var binding rbacv1.ClusterRoleBinding
	for _, u := range seed {
		var into any = &role
		if u.GetKind() == "ClusterRoleBinding" {
			into = &binding
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := rbac.ImpersonationClusterRole(rbac.ImpersonationOptions{ARNs: []string{arnA}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustJSON(t, objs.ClusterRoles[0].Rules), mustJSON(t, role.Rules); got != want {
		t.Errorf("rules differ from the documented ones\n got: %s\nwant: %s", got, want)
	}
	if got, want := mustJSON(t, objs.ClusterRoleBindings[0].Subjects), mustJSON(t, binding.Subjects); got != want {
		t.Errorf("subjects differ from the documented ones\n got: %s\nwant: %s", got, want)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestYAMLIsDeterministicAndComplete(t *testing.T) {
	a, err := rbac.ConsoleRBAC(rbac.ConsoleOptions{ARNs: []string{arnB, arnA}, Namespaces: []string{"ns2", "ns1"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := rbac.ConsoleRBAC(rbac.ConsoleOptions{ARNs: []string{arnA, arnB, arnA}, Namespaces: []string{"ns1", "ns2"}})
	if err != nil {
		t.Fatal(err)
	}
	ya, err := a.YAML()
	if err != nil {
		t.Fatal(err)
	}
	yb, _ := b.YAML()
	if string(ya) != string(yb) {
		t.Fatalf("input order changed the output:\n%s\n---vs---\n%s", ya, yb)
	}
	s := string(ya)
	for _, want := range []string{"kind: ClusterRole\n", "kind: ClusterRoleBinding\n", "kind: RoleBinding\n", "namespace: ns1", "namespace: ns2", "name: " + arnA, "app.kubernetes.io/managed-by: ekslink"} {
		if !strings.Contains(s, want) {
			t.Errorf("YAML lacks %q:\n%s", want, s)
		}
	}
	for _, unwanted := range []string{"secrets", "creationTimestamp"} {
		if strings.Contains(s, unwanted) {
			t.Errorf("YAML contains %q", unwanted)
		}
	}
	if got := strings.Count(s, "\n---\n"); got != 4 { // 2 ClusterRoles, 1 ClusterRoleBinding, 2 RoleBindings
		t.Errorf("documents = %d, want 5:\n%s", got+1, s)
	}
}

// TestConsoleRBACThroughImpersonation is the acceptance test: the connector's service account,
// holding only the rendered impersonation role, impersonates ARN A, who may read pods in ns1 only.
func TestConsoleRBACThroughImpersonation(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns1, ns2, connectorNS := env.Namespace(t), env.Namespace(t), env.Namespace(t)
	env.CreateServiceAccount(t, connectorNS, "eks-connector")
	for _, ns := range []string{ns1, ns2} {
		env.CreateServiceAccount(t, ns, "default")
		_, err := env.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	suffix := strings.TrimPrefix(connectorNS, "t")
	console, err := rbac.ConsoleRBAC(rbac.ConsoleOptions{ARNs: []string{arnA, arnC}, Namespaces: []string{ns1}, Name: "console" + suffix})
	if err != nil {
		t.Fatal(err)
	}
	imp, err := rbac.ImpersonationClusterRole(rbac.ImpersonationOptions{ARNs: []string{arnA, arnC}, Namespace: connectorNS, Name: "imp" + suffix})
	if err != nil {
		t.Fatal(err)
	}
	all := console.Merge(imp)
	t.Cleanup(func() { deleteAll(env.Client, all) })
	for i := 0; i < 2; i++ { // the second apply must converge without conflicts
		if err := rbac.Apply(ctx, env.Config, all, rbac.ApplyOptions{}); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}

	token := env.Token(t, connectorNS, "eks-connector", nil, 0)
	asARN := func(arn string) kubernetes.Interface {
		cfg := env.ConfigForToken(token)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: arn}
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := asARN(arnA)

	// RBAC caches update asynchronously: poll the allowed case until it holds.
	var pods *corev1.PodList
	eventually(t, func() error {
		pods, err = a.CoreV1().Pods(ns1).List(ctx, metav1.ListOptions{})
		return err
	})
	if len(pods.Items) != 1 || pods.Items[0].Name != "web" {
		t.Fatalf("A sees %d pods in %s", len(pods.Items), ns1)
	}
	if _, err := a.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("A cannot list namespaces: %v", err)
	}
	forbidden := map[string]func() error{
		"pods in another namespace": func() error { _, err := a.CoreV1().Pods(ns2).List(ctx, metav1.ListOptions{}); return err },
		"pods cluster-wide":         func() error { _, err := a.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); return err },
		"secrets in the allowed namespace": func() error {
			_, err := a.CoreV1().Secrets(ns1).List(ctx, metav1.ListOptions{})
			return err
		},
		"writing in the allowed namespace": func() error {
			return a.CoreV1().Pods(ns1).Delete(ctx, "web", metav1.DeleteOptions{})
		},
		"impersonating an ARN that was not granted": func() error {
			_, err := asARN(arnB).CoreV1().Pods(ns1).List(ctx, metav1.ListOptions{})
			return err
		},
		"setting a user extra (not granted without UserExtras)": func() error {
			cfg := env.ConfigForToken(token)
			cfg.Impersonate = rest.ImpersonationConfig{UserName: arnA, Extra: map[string][]string{rbac.ExtraARN: {arnA}}}
			c, _ := kubernetes.NewForConfig(cfg)
			_, err := c.CoreV1().Pods(ns1).List(ctx, metav1.ListOptions{})
			return err
		},
		"impersonating a group": func() error {
			cfg := env.ConfigForToken(token)
			cfg.Impersonate = rest.ImpersonationConfig{UserName: arnA, Groups: []string{"system:masters"}}
			c, _ := kubernetes.NewForConfig(cfg)
			_, err := c.CoreV1().Pods(ns2).List(ctx, metav1.ListOptions{})
			return err
		},
	}
	for name, call := range forbidden {
		t.Run(name, func(t *testing.T) {
			if err := call(); !apierrors.IsForbidden(err) {
				t.Fatalf("err = %v, want Forbidden", err)
			}
		})
	}

	// The same grants through the connector's real proxy (package impersonation), as the EKS
	// console reaches it: identity in x-aws-eks-identity-arn, the proxy holding the SA token.
	t.Run("through the connector proxy", func(t *testing.T) {
		h, err := impersonation.NewHandler(impersonation.Config{Upstream: env.ConfigForToken(token)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		proxy := httptest.NewServer(h)
		t.Cleanup(proxy.Close)
		get := func(arn, path string) (int, string) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, proxy.URL+path, nil)
			if arn != "" {
				req.Header.Set("x-aws-eks-identity-arn", arn)
			}
			resp, err := proxy.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		cases := []struct {
			name, arn, path string
			status          int
		}{
			{"A sees pods in the allowed namespace", arnA, "/api/v1/namespaces/" + ns1 + "/pods", 200},
			{"an assumed-role session granted by its session ARN sees them too", arnC, "/api/v1/namespaces/" + ns1 + "/pods", 200},
			{"A is forbidden in another namespace", arnA, "/api/v1/namespaces/" + ns2 + "/pods", 403},
			{"A is forbidden cluster-wide", arnA, "/api/v1/pods", 403},
			{"A cannot read secrets", arnA, "/api/v1/namespaces/" + ns1 + "/secrets", 403},
			{"an ARN without a grant is forbidden", arnB, "/api/v1/namespaces/" + ns1 + "/pods", 403},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				status, body := get(tc.arn, tc.path)
				if status != tc.status {
					t.Fatalf("status %d, want %d: %s", status, tc.status, body)
				}
				if tc.status == 200 && !strings.Contains(body, `"name":"web"`) {
					t.Fatalf("pod not listed: %s", body)
				}
			})
		}
		if status, _ := get("", "/api/v1/namespaces/"+ns1+"/pods"); status < 400 {
			t.Fatalf("a request without identity got %d", status)
		}
	})

	// A proxy that sends the user extras needs the extras grant: refused with the default role,
	// allowed once the role is rendered with UserExtras.
	t.Run("user extras need the UserExtras role", func(t *testing.T) {
		h, err := impersonation.NewHandler(impersonation.Config{Upstream: env.ConfigForToken(token), UserExtras: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		proxy := httptest.NewServer(h)
		t.Cleanup(proxy.Close)
		get := func() (int, string) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, proxy.URL+"/api/v1/namespaces/"+ns1+"/pods", nil)
			req.Header.Set("x-aws-eks-identity-arn", arnC)
			resp, err := proxy.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		if status, body := get(); status != http.StatusForbidden || !strings.Contains(body, "userextras") {
			t.Fatalf("extras with the default role: %d %s, want 403 naming userextras", status, body)
		}
		withExtras, err := rbac.ImpersonationClusterRole(rbac.ImpersonationOptions{ARNs: []string{arnA, arnC}, Namespace: connectorNS, Name: "imp" + suffix, UserExtras: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := rbac.Apply(ctx, env.Config, withExtras, rbac.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, func() error {
			if status, body := get(); status != http.StatusOK {
				return fmt.Errorf("%d %s", status, body)
			}
			return nil
		})
	})
}

func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after 10s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func deleteAll(c kubernetes.Interface, objs *rbac.Objects) {
	ctx := context.Background()
	for _, b := range objs.ClusterRoleBindings {
		_ = c.RbacV1().ClusterRoleBindings().Delete(ctx, b.Name, metav1.DeleteOptions{})
	}
	for _, r := range objs.ClusterRoles {
		_ = c.RbacV1().ClusterRoles().Delete(ctx, r.Name, metav1.DeleteOptions{})
	}
}

func BenchmarkConsoleRBACYAML(b *testing.B) {
	arns := make([]string, 50)
	for i := range arns {
		arns[i] = "arn:aws:iam::111122223333:role/console-" + strings.Repeat("x", i%10)
	}
	b.ReportAllocs()
	for b.Loop() {
		objs, err := rbac.ConsoleRBAC(rbac.ConsoleOptions{ARNs: arns, Namespaces: []string{"a", "b", "c"}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := objs.YAML(); err != nil {
			b.Fatal(err)
		}
	}
}

// Narrowing console access under the same name (cluster-wide, then two namespaces, then one)
// removes the broader bindings an earlier apply created: the ARN ends up reading pods only where
// the last render allows. A same-named binding this package did not create is left alone.
func TestNarrowingAccessRemovesTheBroaderBindings(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns1, ns2, ns3 := env.Namespace(t), env.Namespace(t), env.Namespace(t)
	name := "narrow" + strings.TrimPrefix(ns1, "t")
	apply := func(namespaces ...string) {
		t.Helper()
		objs, err := rbac.ConsoleRBAC(rbac.ConsoleOptions{ARNs: []string{arnA}, Namespaces: namespaces, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { deleteAll(env.Client, objs) })
		if err := rbac.Apply(ctx, env.Config, objs, rbac.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: arnA}
	asA, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	canList := func(ns string) error {
		_, err := asA.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err
	}
	forbidden := func(ns string) error {
		if err := canList(ns); !apierrors.IsForbidden(err) {
			return fmt.Errorf("listing pods in %s: %v, want Forbidden", ns, err)
		}
		return nil
	}
	// Someone else's RoleBinding with the same name in ns3 must survive.
	foreign := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns3},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: arnB}},
	}
	if _, err := env.Client.RbacV1().RoleBindings(ns3).Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	apply()
	eventually(t, func() error { return canList(ns2) })
	apply(ns1, ns2)
	eventually(t, func() error { return forbidden(ns3) })
	if err := canList(ns2); err != nil {
		t.Fatal(err)
	}
	apply(ns1)
	eventually(t, func() error { return forbidden(ns2) })
	if err := canList(ns1); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("cluster-wide binding: %v, want NotFound", err)
	}
	if _, err := env.Client.RbacV1().RoleBindings(ns3).Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Errorf("a binding not created by this package was removed: %v", err)
	}
}

// TestApplyErrorIsTheSharedApplyError checks that rbac.Apply and manifest.Apply report refusals
// with one type (errors.As with either package's ApplyError matches), that the API server's error
// stays reachable, and that the RBAC keeps its own field manager on the real API server.
func TestApplyErrorIsTheSharedApplyError(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	objs := &rbac.Objects{Roles: []rbacv1.Role{
		{ObjectMeta: metav1.ObjectMeta{Name: "shared-ok", Namespace: ns}},
		{ObjectMeta: metav1.ObjectMeta{Name: "shared-refused", Namespace: "no-such-namespace-rbac"}},
	}}
	err := rbac.Apply(ctx, env.Config, objs, rbac.ApplyOptions{})
	var re *rbac.ApplyError
	var me *manifest.ApplyError
	var ae *apply.Error
	if !errors.As(err, &re) || !errors.As(err, &me) || !errors.As(err, &ae) || ae.Kind != "Role" || ae.Name != "shared-refused" {
		t.Fatalf("err = %v (%T), want one *apply.Error for Role shared-refused matched by all three names", err, err)
	}
	if !apierrors.IsNotFound(err) {
		t.Fatalf("err = %v, want the API server's NotFound through Unwrap", err)
	}
	role, err := env.Client.RbacV1().Roles(ns).Get(ctx, "shared-ok", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(role.ManagedFields) != 1 || role.ManagedFields[0].Manager != "ekslink" || rbac.DefaultFieldManager != "ekslink" {
		t.Fatalf("managedFields = %+v, want one entry of manager ekslink (the manager rbac has always applied with)", role.ManagedFields)
	}
}
