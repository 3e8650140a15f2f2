package envtest

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
)

func TestCAIssuesVerifiableCertificates(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("system:node:n1", []string{"system:nodes"}, []string{"n1"}, []net.IP{net.IPv4(10, 1, 2, 3)}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.PEM) {
		t.Fatal("CA PEM did not parse")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "n1", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("issued certificate does not verify: %v", err)
	}
	if leaf.Subject.CommonName != "system:node:n1" || len(leaf.Subject.Organization) != 1 || leaf.Subject.Organization[0] != "system:nodes" {
		t.Fatalf("subject = %v", leaf.Subject)
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(10, 1, 2, 3)) {
		t.Fatalf("IP SANs = %v", leaf.IPAddresses)
	}
}
