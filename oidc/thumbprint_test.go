package oidc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func issue(t testing.TB, parent *testCert, cn string, ca bool, dns ...string) *testCert {
	t.Helper()
	key := mustEC(t, elliptic.P256())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: ca, BasicConstraintsValid: true, DNSNames: dns,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if !ca {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	signer, signerCert := key, tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: must(x509.ParseCertificate(der)), key: key}
}

func sha1Hex(c *x509.Certificate) string {
	s := sha1.Sum(c.Raw)
	return hex.EncodeToString(s[:])
}

func TestThumbprintFromPEM(t *testing.T) {
	root := issue(t, nil, "root", true)
	inter := issue(t, root, "intermediate", true)
	leaf := issue(t, inter, "leaf", false, "oidc.example.com")
	p := func(cs ...*testCert) []byte {
		var out []byte
		for _, c := range cs {
			out = append(out, pemBlock("CERTIFICATE", c.cert.Raw)...)
		}
		return out
	}
	tests := []struct {
		name  string
		chain []byte
		want  string
	}{
		{"leaf and intermediate: the intermediate", p(leaf, inter), sha1Hex(inter.cert)},
		{"a served root is skipped", p(leaf, inter, root), sha1Hex(inter.cert)},
		{"leaf only: the leaf", p(leaf), sha1Hex(leaf.cert)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ThumbprintFromPEM(tt.chain)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || len(got) != 40 || got != strings.ToLower(got) {
				t.Fatalf("thumbprint %s, want %s (40 lowercase hex)", got, tt.want)
			}
		})
	}
	if _, err := ThumbprintFromPEM([]byte("nothing")); !errors.Is(err, ErrThumbprint) {
		t.Fatalf("empty chain: %v", err)
	}
	// A damaged intermediate must fail, not leave the leaf to be hashed.
	damaged := append(p(leaf), []byte("-----BEGIN CERTIFICATE-----\n!!!damaged!!!\n-----END CERTIFICATE-----\n")...)
	if got, err := ThumbprintFromPEM(damaged); !errors.Is(err, ErrThumbprint) {
		t.Fatalf("damaged intermediate: %s, %v", got, err)
	}
}

func TestThumbprintLive(t *testing.T) {
	root := issue(t, nil, "root", true)
	inter := issue(t, root, "intermediate", true)
	leaf := issue(t, inter, "leaf", false, "oidc.example.com")
	var sni atomic.Value
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		sni.Store(h.ServerName)
		return &tls.Certificate{Certificate: [][]byte{leaf.cert.Raw, inter.cert.Raw}, PrivateKey: leaf.key}, nil
	}}
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	addr := srv.Listener.Addr().String()

	got, err := Thumbprint(t.Context(), "https://oidc.example.com/cluster/openid/v1/jwks", ThumbprintOptions{RootCAs: roots, Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	if want := sha1Hex(inter.cert); got != want {
		t.Fatalf("thumbprint %s, want SHA-1 of the intermediate %s", got, want)
	}
	if sni.Load() != "oidc.example.com" {
		t.Fatalf("SNI %v, want oidc.example.com", sni.Load())
	}
	// An unverifiable server yields no thumbprint.
	if _, err := Thumbprint(t.Context(), "https://oidc.example.com", ThumbprintOptions{Address: addr}); !errors.Is(err, ErrThumbprint) {
		t.Fatalf("untrusted server: %v", err)
	}
	if _, err := Thumbprint(t.Context(), "https://other.example.com", ThumbprintOptions{RootCAs: roots, Address: addr}); !errors.Is(err, ErrThumbprint) {
		t.Fatalf("wrong host name: %v", err)
	}
	_, port, _ := net.SplitHostPort(addr)
	if _, err := Thumbprint(t.Context(), "http://127.0.0.1:"+port, ThumbprintOptions{}); !errors.Is(err, ErrThumbprint) {
		t.Fatalf("http URL: %v", err)
	}
}

func BenchmarkThumbprintFromPEM(b *testing.B) {
	root := issue(b, nil, "root", true)
	inter := issue(b, root, "intermediate", true)
	leaf := issue(b, inter, "leaf", false, "oidc.example.com")
	chain := append(pemBlock("CERTIFICATE", leaf.cert.Raw), pemBlock("CERTIFICATE", inter.cert.Raw)...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ThumbprintFromPEM(chain); err != nil {
			b.Fatal(err)
		}
	}
}
