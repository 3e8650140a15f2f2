package oidc_test

import (
	"bytes"
	"crypto"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/oidc"
	"k8s.io/client-go/rest"
)

// fetch GETs path from the API server with the admin identity and returns body and headers.
func fetch(t *testing.T, env *envtest.Environment, path string) ([]byte, http.Header) {
	t.Helper()
	rt, err := rest.TransportFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(envtest.Context(t), http.MethodGet, env.URL+path, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, buf.Bytes())
	}
	return buf.Bytes(), resp.Header
}

// pemKeys runs the server's own key files through ParseKeys, as a user would.
func pemKeys(t *testing.T, signers []crypto.Signer) []oidc.Key {
	t.Helper()
	var all []byte
	for _, s := range signers {
		p, err := envtest.PublicKeyPEM(s.Public())
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p...)
	}
	keys, err := oidc.ParseKeys(all)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestDocumentsAreByteIdenticalToKubeAPIServer(t *testing.T) {
	const issuer = "https://s3.eu-west-1.amazonaws.com/ekslink-oidc-test"
	const jwksURI = issuer + "/openid/v1/jwks"
	rsaKey, ecKey := envtest.NewRSAKey(), envtest.NewECKey()
	tests := []struct {
		name string
		keys []crypto.Signer
	}{
		{"one RSA key", []crypto.Signer{rsaKey}},
		{"one EC P-256 key", []crypto.Signer{ecKey}},
		{"RSA and EC together", []crypto.Signer{rsaKey, ecKey}},
		{"EC signing, RSA retiring", []crypto.Signer{ecKey, rsaKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := envtest.Start(t, &envtest.Environment{SigningKeys: tt.keys, Issuer: issuer, JWKSURI: jwksURI, APIAudiences: []string{oidc.DefaultAudience}})
			wantDisc, discHdr := fetch(t, env, oidc.DiscoveryPath)
			wantJWKS, jwksHdr := fetch(t, env, oidc.KubeJWKSPath)

			disc, jwks, err := oidc.Documents(issuer, pemKeys(t, tt.keys), oidc.DocumentOptions{JWKSURI: jwksURI})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(disc, wantDisc) {
				t.Errorf("discovery differs\n ours: %s\nkube: %s", disc, wantDisc)
			}
			if !bytes.Equal(jwks, wantJWKS) {
				t.Errorf("JWKS differs\n ours: %s\nkube: %s", jwks, wantJWKS)
			}
			// The Handler answers with the same headers kube-apiserver sends.
			h, err := oidc.NewHandler(issuer, pemKeys(t, tt.keys), oidc.DocumentOptions{JWKSURI: jwksURI})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				path string
				kube http.Header
			}{{h.DiscoveryPath(), discHdr}, {h.JWKSPath(), jwksHdr}} {
				rec := serve(h, http.MethodGet, c.path, nil)
				for _, name := range []string{"Content-Type", "Cache-Control"} {
					if got, want := rec.Header().Get(name), c.kube.Get(name); got != want {
						t.Errorf("%s %s = %q, kube-apiserver sends %q", c.path, name, got, want)
					}
				}
			}
		})
	}
}

func TestTokenRequestTokensVerifyAgainstOurJWKS(t *testing.T) {
	const issuer = "https://oidc.ekslink.example/cluster-a"
	rsaKey, ecKey := envtest.NewRSAKey(), envtest.NewECKey()
	env := envtest.Start(t, &envtest.Environment{SigningKeys: []crypto.Signer{rsaKey, ecKey}, Issuer: issuer,
		APIAudiences: []string{issuer}})
	ns := env.Namespace(t)
	env.CreateServiceAccount(t, ns, "s3-reader")

	// The lead's three lines: parse the server's public key, build the documents, verify a token.
	keys, err := oidc.ParseKeys(mustPEM(t, rsaKey.Public(), ecKey.Public()))
	_, jwks, err2 := oidc.Documents(issuer, keys, oidc.DocumentOptions{})
	if err = errors.Join(err, err2); err != nil {
		t.Fatal(err)
	}
	tok := env.Token(t, ns, "s3-reader", []string{oidc.DefaultAudience}, 10*time.Minute)
	claims, err := oidc.Verify(tok, jwks, oidc.Expect{Issuer: issuer, Audience: oidc.DefaultAudience})
	if err != nil {
		t.Fatal(err)
	}
	if claims.Namespace != ns || claims.ServiceAccount != "s3-reader" || claims.ServiceAccountUID == "" || claims.Algorithm != "RS256" {
		t.Fatalf("claims = %+v", claims)
	}

	tamper := func(tok string) string {
		p := strings.Split(tok, ".")
		b := []byte(p[1])
		b[10] ^= 1
		p[1] = string(b)
		return strings.Join(p, ".")
	}
	otherKeys, err := oidc.ParseKeys(mustPEM(t, envtest.NewRSAKey().Public()))
	if err != nil {
		t.Fatal(err)
	}
	otherJWKS, err := oidc.JWKS(otherKeys, oidc.DocumentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		token  string
		jwks   []byte
		expect oidc.Expect
		want   error
	}{
		{"tampered payload", tamper(tok), jwks, oidc.Expect{Issuer: issuer}, oidc.ErrSignature},
		{"key set without the signing key (wrong kid)", tok, otherJWKS, oidc.Expect{Issuer: issuer}, oidc.ErrUnknownKeyID},
		{"wrong issuer", tok, jwks, oidc.Expect{Issuer: issuer + "/"}, oidc.ErrIssuer},
		{"wrong audience", tok, jwks, oidc.Expect{Issuer: issuer, Audience: "pods.eks.amazonaws.com"}, oidc.ErrAudience},
		{"expired", tok, jwks, oidc.Expect{Issuer: issuer, Now: func() time.Time { return time.Now().Add(time.Hour) }}, oidc.ErrExpired},
		{"alg none", noneAlg(tok), jwks, oidc.Expect{Issuer: issuer}, oidc.ErrAlgorithm},
		{"the API server's default audience is not STS", env.Token(t, ns, "s3-reader", nil, 10*time.Minute), jwks, oidc.Expect{Issuer: issuer}, oidc.ErrAudience},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := oidc.Verify(tt.token, tt.jwks, tt.expect)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func noneAlg(tok string) string {
	p := strings.Split(tok, ".")
	return "eyJhbGciOiJub25lIn0." + p[1] + "."
}

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
