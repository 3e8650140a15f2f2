// Command customproxy is an example of embedding the impersonation package in your own proxy: an
// HTTPS front door for the Kubernetes API that authenticates callers with mutual TLS and forwards
// each request as the IAM ARN in the caller's verified client certificate (a URI SAN such as
// "arn:aws:iam::123456789012:role/ci", or the common name). Callers without a valid certificate
// never get past the TLS handshake; certificates without exactly one IAM ARN get a 401 Status.
//
//	customproxy --listen=:8443 --tls-cert=server.crt --tls-key=server.key --client-ca=clients.crt \
//	    --api-server=https://kubernetes.default.svc --token-file=/var/run/secrets/kubernetes.io/serviceaccount/token \
//	    --ca-file=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt
//
// It deliberately does not rotate its own serving certificate or reload the client CA (restart
// it), and it trusts only the certificate, never request headers, for the caller's identity.
package main
