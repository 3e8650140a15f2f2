// Package publish puts self-hosted IRSA on AWS: it uploads the discovery document and JWKS built
// by package oidc to S3 (path-style, kube-apiserver's content types, a bucket-policy statement
// granting public read of exactly those two objects) and creates or updates the IAM OIDC
// provider, idempotently: every write is preceded by a read, and a second run with the same input
// only reads. Result.Changes lists what was written; Site.DryRun lists it without writing.
//
// It deliberately does not delete anything (old objects, other policy statements, extra client
// ids stay), does not use object ACLs (many buckets disable them), does not set up CloudFront or
// custom domains, and does not create roles (see oidc.TrustPolicy).
package publish
