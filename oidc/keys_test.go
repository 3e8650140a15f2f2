package oidc

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func mustRSA(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustEC(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func selfSignedCert(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "k"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("CERTIFICATE", der)
}

func TestParseKeysAcceptsEveryEncoding(t *testing.T) {
	rsaKey := mustRSA(t, 2048)
	ecKey := mustEC(t, elliptic.P256())
	p384 := mustEC(t, elliptic.P384())
	p521 := mustEC(t, elliptic.P521())
	rsaJWK := must(json.Marshal(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "x", Use: "sig"}))
	ecPrivJWK := must(json.Marshal(jose.JSONWebKey{Key: ecKey, KeyID: "y"}))
	jwks := must(json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &rsaKey.PublicKey}, {Key: &ecKey.PublicKey}}}))

	tests := []struct {
		name     string
		input    []byte
		wantAlgs []string
		private  []bool
	}{
		{"PKCS#1 RSA private key", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), []string{"RS256"}, []bool{true}},
		{"PKCS#8 RSA private key", pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(rsaKey))), []string{"RS256"}, []bool{true}},
		{"PKCS#8 EC private key", pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(ecKey))), []string{"ES256"}, []bool{true}},
		{"SEC1 EC private key with parameters block", append(pemBlock("EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}), pemBlock("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(p384)))...), []string{"ES384"}, []bool{true}},
		{"PKIX public key", pemBlock("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&p521.PublicKey))), []string{"ES512"}, []bool{false}},
		{"PKCS#1 public key", pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)), []string{"RS256"}, []bool{false}},
		{"certificate", selfSignedCert(t, ecKey), []string{"ES256"}, []bool{false}},
		{"RSA public JWK", rsaJWK, []string{"RS256"}, []bool{false}},
		{"EC private JWK", ecPrivJWK, []string{"ES256"}, []bool{true}},
		{"JWK set", jwks, []string{"RS256", "ES256"}, []bool{false, false}},
		{"public then private of the same key collapse and keep the private half",
			append(pemBlock("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&rsaKey.PublicKey))), pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))...),
			[]string{"RS256"}, []bool{true}},
		{"mixed RSA and EC keep input order",
			append(pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(ecKey))), pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))...),
			[]string{"ES256", "RS256"}, []bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseKeys(tt.input)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != len(tt.wantAlgs) {
				t.Fatalf("got %d keys, want %d", len(keys), len(tt.wantAlgs))
			}
			for i, k := range keys {
				if k.Algorithm != tt.wantAlgs[i] || (k.Private != nil) != tt.private[i] {
					t.Errorf("key %d: alg %s private %v, want %s %v", i, k.Algorithm, k.Private != nil, tt.wantAlgs[i], tt.private[i])
				}
				if want := must(KeyID(k.Public)); k.ID != want {
					t.Errorf("key %d: kid %s, want %s", i, k.ID, want)
				}
			}
		})
	}
}

func TestParseKeysRejects(t *testing.T) {
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	weak := mustRSA(t, 1024)
	p224 := mustEC(t, elliptic.P224())
	good := pemBlock("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&mustEC(t, elliptic.P256()).PublicKey)))
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"Ed25519 private key is unsupported", pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(edPriv))), ErrUnsupportedKey},
		{"Ed25519 public key is unsupported", pemBlock("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(edPub))), ErrUnsupportedKey},
		{"Ed25519 JWK is unsupported", must(json.Marshal(jose.JSONWebKey{Key: edPub})), ErrUnsupportedKey},
		{"RSA-1024 is weak", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(weak)), ErrWeakKey},
		{"P-224 is unsupported", pemBlock("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(p224))), ErrUnsupportedKey},
		{"encrypted PKCS#8 is unsupported", pemBlock("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}), ErrUnsupportedKey},
		{"garbage DER is malformed", pemBlock("PUBLIC KEY", []byte("nope")), ErrMalformedKey},
		{"a bad block next to a good one fails the whole input", append(good, pemBlock("CERTIFICATE", []byte("x"))...), ErrMalformedKey},
		{"no PEM at all", []byte("hello"), ErrNoKeys},
		{"empty JWKS", []byte(`{"keys":[]}`), ErrNoKeys},
		{"symmetric JWK is unsupported", []byte(`{"kty":"oct","k":"AAAA"}`), ErrUnsupportedKey},
		{"broken JSON is malformed", []byte(`{"kty":`), ErrMalformedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeys(tt.input)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("err %T is not a *KeyError", err)
			}
		})
	}
}

func TestParseKeyFilesCollapsesAcrossFiles(t *testing.T) {
	k := mustEC(t, elliptic.P256())
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.pub"), filepath.Join(dir, "b.key")
	if err := os.WriteFile(a, pemBlock("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&k.PublicKey))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, pemBlock("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(k))), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := ParseKeyFiles(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Private == nil {
		t.Fatalf("keys = %+v, want one key with its private half", keys)
	}
	if _, err := ParseKeyFiles(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file: no error")
	}
}

func TestGenerateKeyRoundTrips(t *testing.T) {
	for _, typ := range []KeyType{RSA2048, P256, P384, P521} {
		k, err := GenerateKey(typ)
		if err != nil {
			t.Fatal(err)
		}
		priv := must(k.PrivateKeyPEM())
		pub := must(k.PublicKeyPEM())
		keys, err := ParseKeys(append(priv, pub...))
		if err != nil || len(keys) != 1 || keys[0].ID != k.ID || keys[0].Private == nil {
			t.Fatalf("%s: %v %+v", typ, err, keys)
		}
	}
	if _, err := GenerateKey("ed25519"); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("ed25519: %v", err)
	}
}

func FuzzParseKeys(f *testing.F) {
	rsaKey := mustRSA(f, 2048)
	ecKey := mustEC(f, elliptic.P256())
	f.Add(pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)))
	f.Add(pemBlock("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&ecKey.PublicKey))))
	f.Add(pemBlock("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(ecKey))))
	f.Add(pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)))
	f.Add(selfSignedCert(f, ecKey))
	f.Add(must(json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &rsaKey.PublicKey}, {Key: ecKey}}})))
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"","y":""}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQ","e":"AQAB"}]}`))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseKeys(data)
		if err != nil {
			if len(keys) != 0 {
				t.Fatal("keys returned with an error")
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		// Whatever parses must render.
		if _, _, err := Documents("https://issuer.example.com", keys); err != nil {
			t.Fatalf("parsed keys do not render: %v", err)
		}
	})
}
