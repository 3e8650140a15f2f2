package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key.
func (ca *testCA) issue(t *testing.T, cn string, uris []string, server bool) ([]byte, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMTLSIdentityIsImpersonated(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	api := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		_, _ = io.WriteString(w, `{"kind":"NamespaceList"}`)
	}))
	api.EnableHTTP2 = true
	api.StartTLS()
	defer api.Close()

	dir := t.TempDir()
	serverCA, clientCA, rogueCA := newTestCA(t, "server-ca"), newTestCA(t, "client-ca"), newTestCA(t, "rogue")
	serverCert, serverKey := serverCA.issue(t, "customproxy", nil, true)
	apiCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw})

	addr := make(chan net.Addr, 1)
	cmd := newCommand(func(a net.Addr) { addr <- a })
	cmd.SetErr(io.Discard)
	cmd.SetArgs([]string{
		"--listen=127.0.0.1:0",
		"--tls-cert=" + write(t, dir, "server.crt", serverCert),
		"--tls-key=" + write(t, dir, "server.key", serverKey),
		"--api-server=" + api.URL,
		"--token-file=" + write(t, dir, "token", []byte("proxy-token")),
		"--ca-file=" + write(t, dir, "api-ca.crt", apiCA),
	})
	t.Setenv("CUSTOMPROXY_CLIENT_CA", write(t, dir, "clients.crt", clientCA.pem))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("customproxy returned %v", err)
		}
	}()
	var proxyAddr net.Addr
	select {
	case proxyAddr = <-addr:
	case err := <-done:
		t.Fatalf("customproxy exited: %v", err)
	}

	const arn = "arn:aws:iam::123456789012:role/ci-deployer"
	get := func(t *testing.T, pair [2][]byte) (*http.Response, error) {
		certPEM, keyPEM := pair[0], pair[1]
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(serverCA.pem)
		cfg := &tls.Config{RootCAs: roots}
		if certPEM != nil {
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		req, _ := http.NewRequest(http.MethodGet, "https://"+proxyAddr.String()+"/api/v1/namespaces", nil)
		req.Header.Set("Impersonate-User", "system:admin")                         // spoof attempt
		req.Header.Set("x-aws-eks-identity-arn", "arn:aws:iam::999999999999:root") // not trusted here
		resp, err := client.Do(req)
		if err == nil {
			t.Cleanup(func() { resp.Body.Close() })
		}
		return resp, err
	}

	t.Run("ARN in a URI SAN is impersonated", func(t *testing.T) {
		resp, err := get(t, pem2(clientCA.issue(t, "ci", []string{arn}, false)))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", resp, err)
		}
		mu.Lock()
		h := seen[len(seen)-1]
		mu.Unlock()
		if h.Get("Impersonate-User") != arn || h.Get("Authorization") != "Bearer proxy-token" || len(h.Values("Impersonate-User")) != 1 {
			t.Fatalf("upstream headers %v", h)
		}
		if h.Get("X-Aws-Eks-Identity-Arn") != "" {
			t.Errorf("identity header forwarded")
		}
	})
	t.Run("ARN common name is impersonated", func(t *testing.T) {
		resp, err := get(t, pem2(clientCA.issue(t, arn, nil, false)))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", resp, err)
		}
	})
	for _, tc := range []struct {
		name string
		cn   string
		uris []string
		code int
	}{
		{"certificate without an ARN is refused", "alice", nil, 401},
		{"certificate with two ARNs is refused", "x", []string{arn, "arn:aws:iam::123456789012:user/bob"}, 401},
		{"system: common name is refused", "system:masters", []string{"arn:system:masters"}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			before := len(seen)
			mu.Unlock()
			resp, err := get(t, pem2(clientCA.issue(t, tc.cn, tc.uris, false)))
			if err != nil || resp.StatusCode != tc.code {
				t.Fatalf("%v %v", resp, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != before {
				t.Fatal("request reached the API server")
			}
		})
	}
	t.Run("no client certificate fails the handshake", func(t *testing.T) {
		if _, err := get(t, [2][]byte{}); err == nil {
			t.Fatal("request without a client certificate succeeded")
		}
	})
	t.Run("certificate from another CA fails the handshake", func(t *testing.T) {
		if _, err := get(t, pem2(rogueCA.issue(t, "x", []string{arn}, false))); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("rogue certificate: %v", err)
		}
	})
}

func pem2(cert, key []byte) [2][]byte { return [2][]byte{cert, key} }
