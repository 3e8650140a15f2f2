// Package publishtest runs local S3 (restXml, path style) and IAM (awsQuery) endpoints that verify
// SigV4 and keep buckets and OIDC providers in memory, for testing code that publishes OIDC
// documents. It implements only the operations package publish uses. Each fake embeds an
// Endpoint: its URL, an aws.Config pointing at it (Config), and the requests it accepted.
package publishtest
