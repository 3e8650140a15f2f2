package eksauth_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"

	"github.com/ekslink/ekslink/eksauth"
	"github.com/ekslink/ekslink/envtest"
)

// eksAuthenticatorWebhook is a TokenReview webhook that authenticates like EKS: ParseToken (on the
// test's clock, for the expiry rule) and then aws-iam-authenticator's verifier, which calls the
// local STS. The user is the canonical ARN.
type eksAuthenticatorWebhook struct {
	*httptest.Server
	mu     sync.Mutex
	tokens map[string]bool
}

func newEKSAuthenticatorWebhook(t *testing.T, clock *fakeClock, verify func(string) (string, error)) *eksAuthenticatorWebhook {
	wh := &eksAuthenticatorWebhook{tokens: map[string]bool{}}
	wh.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var tr authenticationv1.TokenReview
		if err := json.NewDecoder(r.Body).Decode(&tr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tr.Status = authenticationv1.TokenReviewStatus{}
		if _, err := eksauth.ParseToken(tr.Spec.Token, eksauth.ValidateOptions{Partition: "aws", Now: clock.Now}); err != nil {
			tr.Status.Error = err.Error()
		} else if arn, err := verify(tr.Spec.Token); err != nil {
			tr.Status.Error = err.Error()
		} else {
			wh.mu.Lock()
			wh.tokens[tr.Spec.Token] = true
			wh.mu.Unlock()
			tr.Status.Authenticated = true
			tr.Status.User = authenticationv1.UserInfo{Username: arn, Groups: []string{"system:authenticated"}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(tr)
	}))
	t.Cleanup(wh.Close)
	return wh
}

func (wh *eksAuthenticatorWebhook) accepted() int {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	return len(wh.tokens)
}

// kubeconfigFile writes the webhook's kubeconfig for kube-apiserver.
func (wh *eksAuthenticatorWebhook) kubeconfigFile(t *testing.T) string {
	return envtest.KubeconfigFile(t, wh.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: wh.Certificate().Raw}), clientcmdv1.AuthInfo{})
}

// TestRESTConfigAgainstARealAPIServer: client-go -> kube-apiserver -> token webhook ->
// aws-iam-authenticator's verifier -> local STS, with the library's rest.Config built from a local
// EKS DescribeCluster, across simulated token expiries.
func TestRESTConfigAgainstARealAPIServer(t *testing.T) {
	const region = "eu-west-1"
	clock := newFakeClock(time.Now())
	sts := localSTS(t, region)
	verifier := referenceVerifier(t, sts, "prod", "aws", region)
	wh := newEKSAuthenticatorWebhook(t, clock, func(tok string) (string, error) {
		id, err := verifier.Verify(tok)
		if err != nil {
			return "", err
		}
		return id.CanonicalARN, nil
	})
	env := envtest.Start(t, &envtest.Environment{ExtraArgs: []string{
		"--authentication-token-webhook-config-file=" + wh.kubeconfigFile(t),
		"--authentication-token-webhook-version=v1",
		"--authentication-token-webhook-cache-ttl=0s",
	}})
	ns := env.Namespace(t)
	role := "arn:aws:iam::111122223333:role/ci-deployer"
	env.Grant(t, ns, "ci-read", envtest.UserSubject(role), []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}}})

	eks := newLocalEKS(t, map[string]map[string]any{"prod": clusterJSON(env.URL, env.CAPEM, "ACTIVE", "API_AND_CONFIG_MAP")})
	ctx := envtest.Context(t)
	rc, err := eksauth.RESTConfig(ctx, eks.Config(), "prod", eksauth.ClusterOptions{Token: eksauth.TokenOptions{Now: clock.Now}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		clock.Advance(20 * time.Minute) // past the 15-minute validity of the token just used
	}
	if got := wh.accepted(); got != 3 {
		t.Errorf("the authenticator accepted %d distinct tokens, want 3", got)
	}
	if _, err := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("RBAC still applies to the ARN: %v", err)
	}

	// A token signed for another cluster name is refused by STS, so the API server says 401.
	other := generator(t, region, eks.Config().Credentials, eksauth.TokenOptions{Now: clock.Now})
	tok, err := other.Token(context.Background(), "other-cluster")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.ClientForToken(t, tok.Value).CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Fatalf("token for another cluster: %v", err)
	}
}
