package publish_test

import (
	"context"
	"crypto"
	"testing"
	"time"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/oidc"
)

// The whole self-hosted IRSA flow: kube-apiserver signs with our key; the documents built from
// its public key are published; a token it issues verifies against the JWKS object that was
// uploaded, and the published discovery document is byte-identical to the API server's own.
func TestPublishedJWKSVerifiesAPIServerTokens(t *testing.T) {
	key, err := oidc.GenerateKey(oidc.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	env := envtest.Start(t, &envtest.Environment{SigningKeys: []crypto.Signer{key.Private}, Issuer: issuer,
		JWKSURI: issuer + oidc.KubeJWKSPath})
	pub, err := key.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := oidc.ParseKeys(pub)
	if err != nil {
		t.Fatal(err)
	}
	disc, jwks, err := oidc.Documents(issuer, keys, oidc.DocumentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	if _, err := w.pub.Publish(context.Background(), publishSite(disc, jwks)); err != nil {
		t.Fatal(err)
	}
	b, _ := w.s3.Bucket("ekslink-irsa")
	kubeDisc, err := env.Client.CoreV1().RESTClient().Get().AbsPath(oidc.DiscoveryPath).DoRaw(envtest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Objects[".well-known/openid-configuration"].Body; string(got) != string(kubeDisc) {
		t.Fatalf("published discovery %s\nkube-apiserver serves %s", got, kubeDisc)
	}
	ns := env.Namespace(t)
	env.CreateServiceAccount(t, ns, "s3-reader")
	tok := env.Token(t, ns, "s3-reader", []string{oidc.DefaultAudience}, 10*time.Minute)
	claims, err := oidc.Verify(tok, b.Objects["openid/v1/jwks"].Body, oidc.Expect{Issuer: issuer, Subject: oidc.ServiceAccountSubject(ns, "s3-reader")})
	if err != nil {
		t.Fatal(err)
	}
	if claims.KeyID != key.ID {
		t.Fatalf("kid %s, want %s", claims.KeyID, key.ID)
	}
}
