package oidc

import (
	"bytes"
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

	"github.com/ekslink/ekslink/internal/regularfile"
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
		{"a block with bad base64 before a good one is not skipped", append([]byte("-----BEGIN PUBLIC KEY-----\n!!!not base64!!!\n-----END PUBLIC KEY-----\n"), good...), ErrMalformedKey},
		{"a block with bad base64 after a good one is not skipped", append(append([]byte{}, good...), "-----BEGIN PUBLIC KEY-----\n!!!not base64!!!\n-----END PUBLIC KEY-----\n"...), ErrMalformedKey},
		{"a truncated last block is not skipped", append(append([]byte{}, good...), good[:len(good)-30]...), ErrMalformedKey},
		{"no PEM at all", []byte("hello"), ErrNoKeys},
		{"OpenSSH public key (the old walkthrough's ssh-keygen output)", []byte("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@host\n"), ErrUnsupportedKey},
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

func TestParseKeysBoundsItsInput(t *testing.T) {
	one := pemBlock("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&mustEC(t, elliptic.P256()).PublicKey)))
	big := bytes.Repeat(one, (1<<20)/len(one)+1)
	path := filepath.Join(t.TempDir(), "big.pem")
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("oversized input", func(t *testing.T) {
		if _, err := ParseKeys(big); !errors.Is(err, ErrMalformedKey) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("oversized file", func(t *testing.T) {
		if _, err := ParseKeyFiles(path); !errors.Is(err, ErrMalformedKey) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("endless device", func(t *testing.T) {
		if _, err := ParseKeyFiles("/dev/zero"); !errors.Is(err, regularfile.ErrNotRegular) {
			t.Fatalf("err = %v", err)
		}
	})
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

// Fixed seed keys keep the fuzz worker's start-up cheap.
const (
	fuzzRSAKey = `-----BEGIN RSA PRIVATE KEY-----
MIIEpQIBAAKCAQEAnlBDkPJnzypI36aEjOVkKGgVs9IhEVt3i+tTng23Z9GFqFSd
MCm1uD/YuNISvxBq3tCF6ssiSpkI3quHE4bK98kFvW/j2l/CBOj7cj7tscBq/pbh
+8xS9Imd8/P7HeYaWAGzoQIIyxWE6O9YgUVzvbmiZDCPMpEF7a9YgbiQglgh5xNj
DoQenpyJTqdCxFCdqpcjNvjaYAjl0aj0cC0kiV9q7F3k2M07XfqFrArMwi/W+3Ie
M6dsexs/Z2RPjbB1NQcnJdmWLdzt9gTkdfNDp4YlXvvgZPgAlOs1WAwin9a133zJ
erHxgMN+MBrvlegTvad/RrumFX2yyBA+vPQkVQIDAQABAoIBAAjeXN/yfxeUj38y
ktuvFgygGBHPbwQhPZyG/ajYV908WDfKgFZsX75cmprFRJY+KIkm4U76kNyLn3rp
3P1JCyG/uc9CRLS9BzTDNc178lDc2KGTzkEO0dmFGWYggCwinHiFpTcbKBGduP5b
j3ezw6dt43JSuL2PxjyUcBQu71l92SGRaIbLXJozdBdsZukwfjSlOM62dOxm3XtD
O/LGq1wJ+m9+uEpG/pUHD9/BhuXXBE2aBmumhn5xjICYqWbPJoq0DMEO6QAuYp1T
o44GoSBFQJqV91Tx3ux2D20zy9KEm7H3KMv8gO8CNoKppLw47pVBHSx/GLJGrV3H
2kdMElkCgYEA2m9TK/P1lLNPFYyBPF8n9VDkuVbqKeLPk1EEnDLQ11XCkT1F6GKl
Siczb6GYA5pHNMNJYQMGwwlJjGKzzw0DSF/M2KXnW3UJqCQlmSrldX/uFb7Buzpw
ZMIopfkkSVayzWFybY2mbZcRLmt2Pz/xFwTz+6wDa3o0HcJYAHN2DgsCgYEAuYoT
R5ec2iN0P3JX+XQ3KDOGbeCqoTpwF1zv5Lh1rHL5I5ZgGfURJog/GOmT7m+A6awS
s/Y4qXhTATK5AlRKQEY9vOuhwevFRXfPhTEl8b80tJIOOKxgAvQFpcg0buc1ymAu
5AEhHR6EmkVmTLmbra6Ktzs3zA84r6CG6s988x8CgYEAoOP+zxESgkTQq36icmVk
eTzsO9fZAqEdY9T5IFQNn457kZ8gLtr6BHR7Xm4YGg85A5QUKHCiOmZM1iqdZpSf
Jl/p8mnAz4yVYFO/neIKwVFJfJrU96NDxfN9HUM1hw9lBAIS1r7PJ0luTlK49j2S
xvHPBEDfA/svB/xt9WcWPaECgYEArhZ0CJSlQ7hIds+e5By7NClEVQycjTL7wbAe
FwlMwEYQpeeOvExJj1H/giyH9Q0CdD5UPi8k8z5HA7TICvtzv+MoQn8FA6NpMck9
GcgHxlCV72ermFmErMCyG99B811WB1FALgcxPtVHrki3t/3fqJNA7LPPotQVaBTD
Asc0ghkCgYEArdjXVcB+vYeIv3T4KGCHfXKBTCA3YdoNuC4QJiLyY/w9JXCShdJi
qOgD2SaOUloH6ismgK3pHupiQlkDn65RjKZq3seZnv1GHandBMIdK+GCHx1Fh02y
7CY3zHz2gkyjB3WVw6PW5Fb4Ydv4TOVfRkdJ0kRnJwIzS+/5X3mXfnM=
-----END RSA PRIVATE KEY-----
`
	fuzzECKey = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIFWppgKaCsivC/Rm+BIkTxz+bkYnhOH6f2jTQm6Bk6PdoAoGCCqGSM49
AwEHoUQDQgAEF7I7SYcM2tgD9B9t7nn+PjYOePfqq/OYbnT9ig2Tm00Az/cn+qX8
d+zkddisnHFRW0wIjZL8uXOuCCOK+msV8Q==
-----END EC PRIVATE KEY-----
`
)

func FuzzParseKeys(f *testing.F) {
	rsaBlock, _ := pem.Decode([]byte(fuzzRSAKey))
	rsaKey := must(x509.ParsePKCS1PrivateKey(rsaBlock.Bytes))
	ecBlock, _ := pem.Decode([]byte(fuzzECKey))
	ecKey := must(x509.ParseECPrivateKey(ecBlock.Bytes))
	// No RSA private key seed: Go validates mutated RSA private keys with expensive arithmetic that,
	// under coverage instrumentation, stalls the fuzzer for minutes. TestParseKeysAcceptsEveryEncoding
	// and TestParseKeysRejects cover RSA private keys.
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
		if _, _, err := Documents("https://issuer.example.com", keys, DocumentOptions{}); err != nil {
			t.Fatalf("parsed keys do not render: %v", err)
		}
	})
}

func BenchmarkParseKeys(b *testing.B) {
	input := append(pemBlock("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&mustRSA(b, 2048).PublicKey))),
		pemBlock("PUBLIC KEY", must(x509.MarshalPKIXPublicKey(&mustEC(b, elliptic.P256()).PublicKey)))...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseKeys(input); err != nil {
			b.Fatal(err)
		}
	}
}
