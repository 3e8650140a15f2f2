package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
)

// The identity is the single ARN URI SAN of the verified client certificate.
func Example_certIdentity() {
	arn, _ := url.Parse("arn:aws:iam::123456789012:role/ci-deployer")
	leaf := &x509.Certificate{URIs: []*url.URL{arn}}
	r := &http.Request{TLS: &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf}}}}
	id, err := certIdentity(r)
	fmt.Println(id, err)

	_, err = certIdentity(&http.Request{})
	fmt.Println(err)
	// Output:
	// arn:aws:iam::123456789012:role/ci-deployer <nil>
	// impersonation: no identity: no verified client certificate
}
