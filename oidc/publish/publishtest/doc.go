// Package publishtest runs local S3 (restXml, path style) and IAM (awsQuery) endpoints for testing
// code that publishes OIDC documents. S3 keeps buckets in memory and implements only the operations
// package publish uses; IAM is the IAM endpoint of an envtest/awsfake Set (IAM.Set), so the OIDC
// providers published there are the ones that Set's STS AssumeRoleWithWebIdentity trusts, with the
// roles made through the same IAM. Entry points: NewS3 and NewIAM.
//
// Each fake embeds an envtest/awstest Server, which verifies every request's SigV4 signature with
// the AWS SDK's own signer: its URL, an aws.Config pointing at it (Config), and the requests it
// accepted (Requests, Reset). The EKS, SSM, EKS Auth and STS fakes are in envtest/awsfake.
package publishtest
