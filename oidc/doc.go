// Package oidc is self-hosted IRSA (IAM roles for service accounts) for any Kubernetes cluster:
// it turns service-account signing keys into the OIDC discovery document and JWKS that AWS STS
// fetches, byte for byte what kube-apiserver itself serves, and checks everything STS will check.
//
//   - ParseKeys reads PEM (PKCS#1, PKCS#8, SEC1, PKIX, certificates) and JWK/JWKS input; RSA
//     (2048 to 8192 bits) and ECDSA P-256/384/521; Ed25519 and weak keys fail with typed errors.
//   - Documents and JWKS render the documents (kid = base64url SHA-256 of the PKIX DER, sorted
//     algorithms, compact JSON); options add the legacy empty-kid duplicates or the
//     pod-identity-webhook guide fields.
//   - ValidateIssuer rejects issuers IAM or STS cannot use and warns about trailing slashes and
//     legacy S3 hostnames.
//   - Verify checks a service-account token like STS does, saying which rule failed (built on
//     go-jose).
//   - Thumbprint and ThumbprintFromPEM compute the IAM provider thumbprint.
//   - ProviderARN, TrustPolicy and the Annotation*/Env* constants cover the IAM side and the
//     pod-identity-webhook contract.
//   - Fetch downloads what an issuer really publishes, anonymously, as STS does, and reports
//     mismatches (issuer bytes, status, content types).
//   - Handler serves both documents with atomic key rotation; Rotation computes when a retired key
//     may be unpublished.
//
// Publishing to S3 and creating the IAM OIDC provider live in the subpackage oidc/publish.
//
// The package deliberately does not sign tokens (kube-apiserver does), does not run or configure
// the pod-identity webhook, never fetches keys implicitly while verifying (Verify takes the JWKS
// bytes you trust; Fetch is an explicit step), and does not accept Ed25519 keys even though kube-apiserver could use
// them, because STS rejects EdDSA.
package oidc
