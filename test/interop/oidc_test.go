package interop_test

import (
	"crypto"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/oidc"
)

// A relying party that knows nothing about this package (coreos/go-oidc, as used by many STS-like
// verifiers) discovers our Handler from the issuer URL and accepts a real TokenRequest token.
func TestGoOIDCRelyingPartyAcceptsServedDocuments(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "https://" + ln.Addr().String() + "/cluster-a" // has a port: fine for a test relying party, not for IAM
	key := envtest.NewECKey()
	env := envtest.Start(t, &envtest.Environment{SigningKeys: []crypto.Signer{key}, Issuer: issuer})
	keys, err := oidc.ParseKeys(mustPEM(t, key.Public()))
	if err != nil {
		t.Fatal(err)
	}
	h, err := oidc.NewHandler(issuer, keys, oidc.DocumentOptions{SkipIssuerValidation: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.StartTLS()
	defer srv.Close()

	ctx := gooidc.ClientContext(envtest.Context(t), srv.Client())
	provider, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	verifier := provider.Verifier(&gooidc.Config{ClientID: oidc.DefaultAudience, SupportedSigningAlgs: []string{"ES256"}})
	ns := env.Namespace(t)
	env.CreateServiceAccount(t, ns, "app")
	tok := env.Token(t, ns, "app", []string{oidc.DefaultAudience}, 10*time.Minute)
	idt, err := verifier.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if want := oidc.ServiceAccountSubject(ns, "app"); idt.Subject != want {
		t.Fatalf("sub %q, want %q", idt.Subject, want)
	}
	if _, err := verifier.Verify(ctx, env.Token(t, ns, "app", nil, 10*time.Minute)); err == nil {
		t.Fatal("token for the API server's audience accepted for sts.amazonaws.com")
	}
}

// mustPEM encodes public keys as the PEM that kube-apiserver's --service-account-key-file holds.
func mustPEM(t *testing.T, pubs ...crypto.PublicKey) []byte {
	t.Helper()
	var out []byte
	for _, p := range pubs {
		b, err := envtest.PublicKeyPEM(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}
