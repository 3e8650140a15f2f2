// Package publishtest runs local S3 (restXml, path style) and IAM (awsQuery) endpoints that verify
// SigV4 and keep buckets and OIDC providers in memory, for testing code that publishes OIDC
// documents. It implements only the operations package publish uses.
package publishtest
