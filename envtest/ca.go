package envtest

import (
	"crypto/x509"
	"net"
)

// CA is a throwaway certificate authority for certificates a test needs besides the control
// plane's own (a kubelet's serving certificate, the API server's kubelet client certificate).
type CA struct {
	ca *certAuthority
	// PEM is the CA certificate, PEM encoded.
	PEM []byte
}

// NewCA returns a fresh CA (ECDSA P-256, valid for a day) whose certificate has the common name.
func NewCA(commonName string) (*CA, error) {
	ca, err := newCA(commonName)
	if err != nil {
		return nil, err
	}
	return &CA{ca: ca, PEM: ca.pem}, nil
}

// Issue returns a PEM certificate and PKCS#8 key signed by the CA, for the common name,
// organizations (Kubernetes groups), DNS names and IP addresses, with the one extended key usage.
func (c *CA) Issue(commonName string, orgs, dnsNames []string, ips []net.IP, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte, err error) {
	return c.ca.issue(commonName, orgs, dnsNames, ips, usage)
}
