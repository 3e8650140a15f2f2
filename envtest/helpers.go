package envtest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

var nsCounter atomic.Int64

// Namespace creates a fresh namespace for the test (deleted at cleanup) and returns its name.
func (e *Environment) Namespace(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t-%s-%d-%d", sanitize(t.Name()), time.Now().UnixNano()%100000, nsCounter.Add(1))
	if len(name) > 63 {
		name = name[len(name)-63:]
		name = "t" + strings.TrimLeft(name[1:], "-")
	}
	ctx := Context(t)
	_, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("envtest: creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = e.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

func sanitize(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 30 {
		out = strings.Trim(out[len(out)-30:], "-")
	}
	return out
}

// CreateServiceAccount creates a service account (idempotently).
func (e *Environment) CreateServiceAccount(t testing.TB, namespace, name string) {
	t.Helper()
	_, err := e.Client.CoreV1().ServiceAccounts(namespace).Create(Context(t),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("envtest: creating service account %s/%s: %v", namespace, name, err)
	}
}

// Token mints a token for the service account with TokenRequest. Empty audiences mean the API
// server's default audiences; ttl 0 means one hour.
func (e *Environment) Token(t testing.TB, namespace, name string, audiences []string, ttl time.Duration) string {
	t.Helper()
	tok, err := e.TokenRequest(Context(t), namespace, name, audiences, ttl)
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	return tok
}

// TokenRequest is Token without a testing.TB, for use from goroutines and benchmarks.
func (e *Environment) TokenRequest(ctx context.Context, namespace, name string, audiences []string, ttl time.Duration) (string, error) {
	if ttl == 0 {
		ttl = time.Hour
	}
	secs := int64(ttl / time.Second)
	tr, err := e.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token request for %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// ConfigForToken returns a rest.Config that authenticates with the bearer token.
func (e *Environment) ConfigForToken(token string) *rest.Config {
	return &rest.Config{
		Host:            e.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: e.CAPEM},
		QPS:             -1,
	}
}

// ClientForToken returns a clientset that authenticates with the bearer token.
func (e *Environment) ClientForToken(t testing.TB, token string) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(e.ConfigForToken(token))
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	return c
}

// Grant gives subject the rules: a Role and RoleBinding named name in namespace, or a ClusterRole
// and ClusterRoleBinding when namespace is empty. It waits until the authorizer sees the grant.
func (e *Environment) Grant(t testing.TB, namespace, name string, subject rbacv1.Subject, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := Context(t)
	rbac := e.Client.RbacV1()
	var err error
	if namespace == "" {
		_, err = rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{})
		if err == nil {
			_, err = rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
				Subjects:   []rbacv1.Subject{subject},
			}, metav1.CreateOptions{})
		}
		if err == nil {
			t.Cleanup(func() {
				_ = rbac.ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
				_ = rbac.ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
			})
		}
	} else {
		_, err = rbac.Roles(namespace).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{})
		if err == nil {
			_, err = rbac.RoleBindings(namespace).Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
				Subjects:   []rbacv1.Subject{subject},
			}, metav1.CreateOptions{})
		}
	}
	if err != nil {
		t.Fatalf("envtest: granting %s: %v", name, err)
	}
	if len(rules) > 0 && len(rules[0].Verbs) > 0 && len(rules[0].Resources) > 0 {
		r := rules[0]
		group := ""
		if len(r.APIGroups) > 0 && r.APIGroups[0] != "*" {
			group = r.APIGroups[0]
		}
		name := ""
		if len(r.ResourceNames) > 0 {
			name = r.ResourceNames[0]
		}
		e.WaitAllowed(t, subject, namespace, r.Verbs[0], group, r.Resources[0], name)
	}
}

// ServiceAccountSubject is the RBAC subject of a service account.
func ServiceAccountSubject(namespace, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: name}
}

// UserSubject is the RBAC subject of a user name (for example an IAM ARN).
func UserSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

// WaitAllowed polls SubjectAccessReview until subject may do verb on the resource (RBAC caches
// update asynchronously after a write).
func (e *Environment) WaitAllowed(t testing.TB, subject rbacv1.Subject, namespace, verb, group, resource, name string) {
	t.Helper()
	user := subject.Name
	var groups []string
	if subject.Kind == rbacv1.ServiceAccountKind {
		user = "system:serviceaccount:" + subject.Namespace + ":" + subject.Name
		groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + subject.Namespace, "system:authenticated"}
	} else if subject.Kind == rbacv1.GroupKind {
		user, groups = "ekslink-envtest-probe", []string{subject.Name}
	}
	parts := strings.SplitN(resource, "/", 2)
	attrs := &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: verb, Group: group, Resource: parts[0], Name: name}
	if len(parts) == 2 {
		attrs.Subresource = parts[1]
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		sar, err := e.Client.AuthorizationV1().SubjectAccessReviews().Create(Context(t), &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: attrs},
		}, metav1.CreateOptions{})
		if err == nil && sar.Status.Allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("envtest: %s still may not %s %s in %q after 10s (err=%v)", user, verb, resource, namespace, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
