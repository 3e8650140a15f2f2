package oidc

import (
	"bytes"
	"context"
	"crypto/sha1" // IAM defines the thumbprint as SHA-1: an identifier, not a signature
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// ErrThumbprint is wrapped by thumbprint errors.
var ErrThumbprint = errors.New("oidc: cannot compute thumbprint")

// CertificateThumbprint is the IAM thumbprint of one certificate: the lowercase hex SHA-1 of its
// DER encoding (40 characters). IAM accepts either case and compares case-insensitively; the AWS
// console and EKS store lowercase, so that is what this package emits and compares against.
func CertificateThumbprint(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// TopIntermediate picks the certificate IAM takes the thumbprint of from a chain ordered as a TLS
// server sends it (leaf first): the last certificate that is not a self-signed root. A server that
// sends only its leaf yields the leaf, as `openssl s_client -showcerts` would.
func TopIntermediate(chain []*x509.Certificate) (*x509.Certificate, error) {
	for i := len(chain) - 1; i >= 0; i-- {
		c := chain[i]
		if i > 0 && isSelfSigned(c) {
			continue
		}
		return c, nil
	}
	return nil, fmt.Errorf("%w: empty certificate chain", ErrThumbprint)
}

func isSelfSigned(c *x509.Certificate) bool {
	return c.IsCA && string(c.RawIssuer) == string(c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// ThumbprintFromPEM computes the IAM thumbprint offline from a PEM certificate chain, leaf first
// (as `openssl s_client -showcerts` prints it or a server's chain file holds it).
func ThumbprintFromPEM(chainPEM []byte) (string, error) {
	var chain []*x509.Certificate
	rest := chainPEM
	decoded := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		decoded++
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrThumbprint, err)
		}
		chain = append(chain, c)
	}
	// pem.Decode skips blocks it cannot decode; a skipped certificate would shift the thumbprint
	// to another one.
	if begins := bytes.Count(chainPEM, []byte("-----BEGIN ")); begins != decoded {
		return "", fmt.Errorf("%w: %d PEM BEGIN lines but only %d well-formed blocks (bad base64 or a missing END line)", ErrThumbprint, begins, decoded)
	}
	top, err := TopIntermediate(chain)
	if err != nil {
		return "", err
	}
	return CertificateThumbprint(top), nil
}

// ThumbprintOptions tune Thumbprint.
type ThumbprintOptions struct {
	// RootCAs verify the server (default: the system roots). The connection is always verified:
	// a thumbprint of an unverified server is worthless.
	RootCAs *x509.CertPool
	// Dialer dials the TCP connection (default: a net.Dialer with a 10 s timeout).
	Dialer *net.Dialer
	// Address overrides host:port to dial while keeping SNI and verification on the URL's host
	// (tests, proxies).
	Address string
}

// Thumbprint connects to the host of rawURL (an issuer or jwks_uri) over TLS with SNI, verifies
// the certificate chain and returns the IAM thumbprint of the top intermediate CA the server
// sends (see TopIntermediate).
func Thumbprint(ctx context.Context, rawURL string, opts ThumbprintOptions) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return "", fmt.Errorf("%w: %q is not an https URL", ErrThumbprint, rawURL)
	}
	addr := opts.Address
	if addr == "" {
		port := u.Port()
		if port == "" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	dialer := opts.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: 10 * time.Second}
	}
	td := &tls.Dialer{NetDialer: dialer, Config: &tls.Config{
		ServerName: u.Hostname(),
		RootCAs:    opts.RootCAs,
		MinVersion: tls.VersionTLS12,
	}}
	conn, err := td.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%w: TLS connection to %s: %v", ErrThumbprint, addr, err)
	}
	defer conn.Close()
	state := conn.(*tls.Conn).ConnectionState()
	top, err := TopIntermediate(state.PeerCertificates)
	if err != nil {
		return "", err
	}
	return CertificateThumbprint(top), nil
}
