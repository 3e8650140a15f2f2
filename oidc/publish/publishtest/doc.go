// Package publishtest runs local S3 (restXml, path style) and IAM (awsQuery) endpoints that keep
// buckets and OIDC providers in memory, for testing code that publishes OIDC documents. It
// implements only the operations package publish uses. Entry points: NewS3 and NewIAM.
//
// Each fake embeds an envtest/awstest Server, which verifies every request's SigV4 signature with
// the AWS SDK's own signer: its URL, an aws.Config pointing at it (Config), and the requests it
// accepted (Requests, Reset). The EKS, SSM, EKS Auth and STS fakes are in envtest/awsfake.
package publishtest
