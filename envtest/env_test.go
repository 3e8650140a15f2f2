package envtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMain(m *testing.M) { Main(m) }

func TestRBACIsEnforcedForServiceAccountTokens(t *testing.T) {
	env := Shared(t)
	ns := env.Namespace(t)
	env.CreateServiceAccount(t, ns, "reader")
	tok := env.Token(t, ns, "reader", nil, 0)
	client := env.ClientForToken(t, tok)

	_, err := client.CoreV1().ConfigMaps(ns).List(Context(t), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("before the RoleBinding: err = %v, want Forbidden", err)
	}
	env.Grant(t, ns, "read-configmaps", ServiceAccountSubject(ns, "reader"), []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}},
	})
	if _, err := client.CoreV1().ConfigMaps(ns).List(Context(t), metav1.ListOptions{}); err != nil {
		t.Fatalf("after the RoleBinding: %v", err)
	}
	if _, err := client.CoreV1().Secrets(ns).List(Context(t), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("secrets: err = %v, want Forbidden", err)
	}
}

func TestServesOIDCDocumentsWithTheGivenKeys(t *testing.T) {
	rsaKey, ecKey := NewRSAKey(), NewECKey()
	env := Start(t, Options{SigningKeys: []crypto.Signer{rsaKey, ecKey}, Issuer: "https://issuer.example.com/cluster", JWKSURI: "https://issuer.example.com/cluster/keys.json"})
	ctx := Context(t)
	rc := env.Client.CoreV1().RESTClient()

	raw, err := rc.Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var disc map[string]any
	if err := json.Unmarshal(raw, &disc); err != nil {
		t.Fatal(err)
	}
	if disc["issuer"] != "https://issuer.example.com/cluster" || disc["jwks_uri"] != "https://issuer.example.com/cluster/keys.json" {
		t.Fatalf("discovery = %s", raw)
	}
	raw, err = rc.Get().AbsPath("/openid/v1/jwks").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &jwks); err != nil {
		t.Fatal(err)
	}
	var sawRSA, sawEC bool
	for _, k := range jwks.Keys {
		switch k["kty"] {
		case "RSA":
			sawRSA = k["alg"] == "RS256" && k["n"] != "" && len(k["n"]) == (rsaKey.Public().(*rsa.PublicKey).N.BitLen()+5)/6
		case "EC":
			sawEC = k["alg"] == "ES256" && k["crv"] == "P-256" && ecKey.Public().(*ecdsa.PublicKey).Curve.Params().Name == "P-256"
		}
	}
	if len(jwks.Keys) != 2 || !sawRSA || !sawEC {
		t.Fatalf("jwks = %s", raw)
	}
}

func TestAPIServerRestart(t *testing.T) {
	env := Start(t, Options{})
	env.StopAPIServer()
	if _, err := env.Client.CoreV1().Namespaces().Get(Context(t), "default", metav1.GetOptions{}); err == nil {
		t.Fatal("API server still answers after StopAPIServer")
	}
	if err := env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Namespaces().Get(Context(t), "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
