// Package awstest runs local HTTPS servers that stand in for AWS service endpoints in tests, so
// code under test runs the AWS SDK's real clients against them. The entry point is NewServer (or
// New, closed at a test's cleanup) with the service's signing name and protocol, then Handle,
// HandleTarget or HandleAction for the operations a test needs, and Config for the client side.
//
// A Server verifies every request's SigV4 signature with aws-sdk-go-v2's own signer (service name,
// region, credential scope, signed headers, payload hash, clock skew), both in the Authorization
// header and in presigned query strings, and answers errors in the exact shape of the service's
// protocol (awsJson1.1, restJson1, awsQuery, restXml), so the SDK decodes them into the same
// smithy errors it decodes from AWS. Handlers run only after the signature was accepted: JSON 1.x
// targets with HandleTarget, query actions with HandleAction, REST paths with Handle.
//
// Point SDK clients at it through aws.Config.BaseEndpoint (Config does that), never by patching
// production code. Ready-made services built on it: envtest/awsfake (EKS, SSM, EKS Auth, STS, IAM) and
// oidc/publish/publishtest (S3, and awsfake's IAM).
package awstest
