package manifest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/statestore"
)

func TestMain(m *testing.M) { envtest.Main(m) }

func mustUnstructured(t *testing.T, objs []runtime.Object) []*unstructured.Unstructured {
	t.Helper()
	u, err := Unstructured(objs)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// renderConnectorIn renders the connector into namespace ns, named prefix+ns, with opts changing
// validConnectorOptions.
func renderConnectorIn(t *testing.T, ns, prefix string, opts func(*ConnectorOptions)) (ConnectorOptions, []runtime.Object) {
	t.Helper()
	return connectorObjects(t, func(o *ConnectorOptions) {
		o.Namespace, o.Name = ns, prefix+ns
		opts(o)
	})
}

// agentObjects renders o, with ClusterName "prod" and Region "eu-west-1" when not given.
func agentObjects(t *testing.T, o PodIdentityAgentOptions) []runtime.Object {
	t.Helper()
	setDefault(&o.ClusterName, "prod")
	setDefault(&o.Region, "eu-west-1")
	objs, err := RenderPodIdentityAgent(o)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// connectorObjects renders validConnectorOptions changed by opts, and returns the options too.
func connectorObjects(t *testing.T, opts func(*ConnectorOptions)) (ConnectorOptions, []runtime.Object) {
	t.Helper()
	o := validConnectorOptions()
	opts(&o)
	objs, err := RenderConnector(o)
	if err != nil {
		t.Fatal(err)
	}
	return o, objs
}

// applyForReal applies objs (waiting while a CRD just applied is not served yet) and deletes the
// cluster-scoped RBAC among them when the test ends; the namespaced objects go with the namespace.
func applyForReal(t *testing.T, env *envtest.Environment, objs []runtime.Object) {
	t.Helper()
	if err := applyWhenServed(envtest.Context(t), env.Config, mustUnstructured(t, objs)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bg := context.Background()
		for _, obj := range objs {
			switch o := obj.(type) {
			case *rbacv1.ClusterRole:
				_ = env.Client.RbacV1().ClusterRoles().Delete(bg, o.Name, metav1.DeleteOptions{})
			case *rbacv1.ClusterRoleBinding:
				_ = env.Client.RbacV1().ClusterRoleBindings().Delete(bg, o.Name, metav1.DeleteOptions{})
			}
		}
	})
}

func TestRenderedManifestsPassServerSideDryRun(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	o := validConnectorOptions()
	o.Namespace, o.Name, o.Replicas = ns, "dry-"+ns, 3
	o.GrantedARNs = []string{testARN, testARN2}
	o.Env = nil
	connector, err := RenderConnector(o)
	if err != nil {
		t.Fatal(err)
	}
	pia, err := RenderPodIdentityAgent(PodIdentityAgentOptions{ClusterName: "prod", Region: "eu-west-1", HybridCredentialsDir: DefaultHybridCredentialsDir})
	if err != nil {
		t.Fatal(err)
	}
	objs := mustUnstructured(t, append(connector, pia...))
	if err := Apply(ctx, env.Config, objs, ApplyOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	// Dry run persisted nothing.
	if _, err := env.Client.AppsV1().StatefulSets(ns).Get(ctx, o.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry run created the StatefulSet: %v", err)
	}
}

func TestApplyRefusesWhatTheServerRefuses(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	tests := []struct {
		name string
		doc  string
	}{
		{"unknown field", fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: %s\ndata:\n  a: b\nspecc: {}\n", ns)},
		{"invalid value", fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: Not_Valid\n  namespace: %s\n", ns)},
		{"missing namespace", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"},
		{"unknown kind", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			err = Apply(ctx, env.Config, objs, ApplyOptions{DryRun: true})
			var ae *ApplyError
			if !errors.As(err, &ae) || ae.Name != objs[0].GetName() {
				t.Fatalf("err = %v, want *ApplyError for %s", err, objs[0].GetName())
			}
			t.Logf("refused as expected: %v", err)
		})
	}
}

// TestAppliedRBACIsLeastPrivilege applies a rendering for real and asks the authorizer what the
// connector's service account may do.
func TestAppliedRBACIsLeastPrivilege(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	o, objs := renderConnectorIn(t, ns, "rbac-", func(o *ConnectorOptions) { o.GrantedARNs = []string{testARN} })
	applyForReal(t, env, objs)
	user := "system:serviceaccount:" + ns + ":" + o.Name
	tests := []struct {
		name    string
		attrs   authorizationv1.ResourceAttributes
		allowed bool
	}{
		{"own state Secret can be read", authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "secrets", Name: "eks-connector-state-0"}, true},
		{"own state Secret can be updated", authorizationv1.ResourceAttributes{Namespace: ns, Verb: "update", Resource: "secrets", Name: "eks-connector-state-1"}, true},
		{"own state Secret cannot be patched (the store only updates, with a precondition)", authorizationv1.ResourceAttributes{Namespace: ns, Verb: "patch", Resource: "secrets", Name: "eks-connector-state-0"}, false},
		{"state Secret of a replica that does not exist cannot", authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "secrets", Name: "eks-connector-state-2"}, false},
		{"activation Secret cannot be read through the API (the kubelet mounts it)", authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "secrets", Name: DefaultActivationSecretName}, false},
		{"activation Secret cannot be changed", authorizationv1.ResourceAttributes{Namespace: ns, Verb: "update", Resource: "secrets", Name: DefaultActivationSecretName}, false},
		{"other Secrets cannot be read", authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "secrets", Name: "other"}, false},
		{"Secrets cannot be listed", authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: "secrets"}, false},
		{"Secrets elsewhere cannot be read", authorizationv1.ResourceAttributes{Namespace: "kube-system", Verb: "get", Resource: "secrets", Name: "eks-connector-state-0"}, false},
		{"Secrets cannot be created (the manifests create the state Secrets)", authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "secrets"}, false},
		{"granted ARN can be impersonated", authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "users", Name: testARN}, true},
		{"other ARN cannot be impersonated", authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "users", Name: testARN2}, false},
		{"groups cannot be impersonated", authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "groups", Name: "system:masters"}, false},
		{"user extras cannot be set (off by default: the proxy sends Impersonate-User alone)", authorizationv1.ResourceAttributes{Verb: "impersonate", Group: "authentication.k8s.io", Resource: "userextras", Subresource: "arn"}, false},
		{"pods cannot be read", authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: "pods"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventuallyAllowed(t, env.Client, user, tt.attrs, tt.allowed); got != tt.allowed {
				t.Fatalf("allowed = %v, want %v", got, tt.allowed)
			}
		})
	}

	// Re-rendered with UserExtras, the same role grants exactly the two extras the proxy then sends.
	t.Run("with UserExtras", func(t *testing.T) {
		o.UserExtras = true
		objs, err := RenderConnector(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := Apply(ctx, env.Config, mustUnstructured(t, objs), ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			extra   string
			allowed bool
		}{{"arn", true}, {"sessionname", true}, {"groups", false}} {
			attrs := authorizationv1.ResourceAttributes{Verb: "impersonate", Group: "authentication.k8s.io", Resource: "userextras", Subresource: tt.extra}
			if got := eventuallyAllowed(t, env.Client, user, attrs, tt.allowed); got != tt.allowed {
				t.Errorf("userextras/%s: allowed = %v, want %v", tt.extra, got, tt.allowed)
			}
		}
	})
}

// eventuallyAllowed polls the authorizer until it gives the expected answer (RBAC caches update
// asynchronously) or a short deadline passes, and returns the last answer.
func eventuallyAllowed(t *testing.T, c kubernetes.Interface, user string, attrs authorizationv1.ResourceAttributes, want bool) bool {
	t.Helper()
	var got bool
	ctx := envtest.Context(t)
	_ = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		r, err := c.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{"system:serviceaccounts", "system:authenticated"}, ResourceAttributes: &attrs},
		}, metav1.CreateOptions{})
		if err != nil {
			if strings.Contains(err.Error(), "context") {
				return false, err
			}
			return false, nil
		}
		got = r.Status.Allowed
		return got == want, nil
	})
	return got
}

// TestPodsPassPodSecurityAdmission creates pods from the rendered template with server-side dry
// run in the rendered namespace, which enforces the baseline level.
func TestPodsPassPodSecurityAdmission(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	o := validConnectorOptions()
	o.Namespace = env.Namespace(t)
	o.Name = "psa-" + o.Namespace
	objs, err := RenderConnector(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(ctx, env.Config, mustUnstructured(t, objs[:2]), ApplyOptions{}); err != nil { // Namespace (PSA labels), ServiceAccount
		t.Fatal(err)
	}
	spec := find[*appsv1.StatefulSet](t, objs).Spec.Template.Spec
	privileged := *spec.DeepCopy()
	privileged.Containers[0].SecurityContext.Privileged = ptr(true)
	privileged.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	moreCaps := *spec.DeepCopy()
	moreCaps.InitContainers[0].SecurityContext.Capabilities.Add = append(moreCaps.InitContainers[0].SecurityContext.Capabilities.Add, "NET_ADMIN")
	tests := []struct {
		name    string
		spec    corev1.PodSpec
		allowed bool
	}{
		{"connector pod under baseline", spec, true},
		{"privileged agent is refused", privileged, false},
		{"a capability beyond baseline is refused", moreCaps, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "psa", Namespace: o.Namespace}, Spec: tt.spec}
			_, err := env.Client.CoreV1().Pods(o.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if tt.allowed && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.allowed && (!apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "violates PodSecurity")) {
				t.Fatalf("err = %v, want Forbidden by Pod Security Admission", err)
			}
		})
	}
}

// TestRenderedRBACIsEnoughForTheRealStateStoreAndProxy runs the real state store and an
// impersonating client with the connector service account's own token after applying the
// rendering: what the connector needs works, the rest is refused.
func TestRenderedRBACIsEnoughForTheRealStateStoreAndProxy(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	o, objs := renderConnectorIn(t, ns, "real-", func(o *ConnectorOptions) { o.GrantedARNs = []string{testARN} })
	applyForReal(t, env, objs)
	sa := envtest.ServiceAccountSubject(ns, o.Name)
	env.WaitAllowed(t, sa, ns, "update", "", "secrets", "eks-connector-state-1")
	env.WaitAllowed(t, sa, "", "impersonate", "", "users", testARN)
	token := env.Token(t, ns, o.Name, nil, 0)
	client := env.ClientForToken(t, token)

	t.Run("state Secret of its own ordinal, rendered empty, is adopted and updated", func(t *testing.T) {
		store := statestore.NewSecret(client, ns, "eks-connector-state-1", statestore.SecretOptions{})
		for i, v := range []string{"pending", "registered"} {
			doc, err := statestore.Update(ctx, store, func(d *statestore.Document) error {
				d.Data["phase"] = []byte(v)
				return nil
			}, nil)
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			if string(doc.Data["phase"]) != v {
				t.Fatalf("phase = %q", doc.Data["phase"])
			}
		}
	})
	t.Run("a Secret that is not a state Secret is refused", func(t *testing.T) {
		if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := statestore.NewSecret(client, ns, "other", statestore.SecretOptions{}).Load(ctx)
		if !apierrors.IsForbidden(errors.Unwrap(err)) {
			t.Fatalf("err = %v, want Forbidden", err)
		}
	})
	impersonating := func(arn string) error {
		cfg := env.ConfigForToken(token)
		// What the proxy sends by default: Impersonate-User alone.
		cfg.Impersonate = rest.ImpersonationConfig{UserName: arn}
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return err
	}
	t.Run("the granted ARN is impersonated (and then has only its own RBAC)", func(t *testing.T) {
		err := impersonating(testARN)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `User "`+testARN+`" cannot get resource "namespaces"`) {
			t.Fatalf("err = %v, want the impersonated user to be refused by its own RBAC", err)
		}
	})
	t.Run("another ARN cannot be impersonated", func(t *testing.T) {
		err := impersonating(testARN2)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "cannot impersonate") {
			t.Fatalf("err = %v, want impersonation refused", err)
		}
	})
}

// TestApplyKeepsItsFieldManager checks on the real API server that manifest.Apply still records
// ownership under "ekslink-manifest" (the name it has always used) now that it applies through
// package manifest/apply, whose own default is "ekslink" (impersonation/rbac's): a changed manager
// would make the next apply on an existing cluster take the fields over from itself.
func TestApplyKeepsItsFieldManager(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	objs, err := Decode([]byte(fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: manager\n  namespace: %s\ndata:\n  a: b\n", ns)))
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(ctx, env.Config, objs, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "manager", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cm.ManagedFields) != 1 || cm.ManagedFields[0].Manager != "ekslink-manifest" || DefaultFieldManager != "ekslink-manifest" {
		t.Fatalf("managedFields = %+v, want one entry of manager ekslink-manifest", cm.ManagedFields)
	}
}
