package envtest

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
)

// ServingCert is a TLS serving certificate for a test server, signed by a fresh CA.
type ServingCert struct {
	// CertPEM and KeyPEM are the certificate and its PKCS#8 key.
	CertPEM, KeyPEM []byte
	// CAPEM verifies CertPEM (a webhook configuration's caBundle).
	CAPEM []byte
}

// TLSCertificate returns the certificate for a tls.Config.
func (c ServingCert) TLSCertificate(t testing.TB) tls.Certificate {
	t.Helper()
	cert, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	return cert
}

// NewServingCert issues a serving certificate for 127.0.0.1, ::1, localhost and the extra DNS
// names, from a CA of its own: for servers the API server calls (admission webhooks, aggregated
// APIs) on loopback.
func NewServingCert(t testing.TB, dnsNames ...string) ServingCert {
	t.Helper()
	ca, err := newCA("ekslink-envtest-serving-ca")
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	certPEM, keyPEM, err := ca.issue("ekslink-envtest-server", nil, append([]string{"localhost"}, dnsNames...),
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	return ServingCert{CertPEM: certPEM, KeyPEM: keyPEM, CAPEM: ca.pem}
}
