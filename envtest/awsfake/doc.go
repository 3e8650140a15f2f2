// Package awsfake is an embedded set of AWS endpoints for tests, the demo and the end-to-end
// tests: EKS (RegisterCluster, DeregisterCluster, DescribeCluster of registered clusters and of
// EKS clusters added with Set.AddCluster, whose access entries and policy associations it keeps:
// Create/List/Describe/DeleteAccessEntry, Associate/Disassociate/ListAssociatedAccessPolicies, with
// EKS's refusals and Set.FailEKS to answer an operation with an error such as
// ThrottlingException or AccessDeniedException), SSM
// (RegisterManagedInstance, anonymous), EKS Auth (AssumeRoleForPodIdentity) and STS
// (GetCallerIdentity, signed or presigned). The entry point is Start, which returns a Set of
// running endpoints; Set.Config gives an aws.Config for them and Set.Env the environment variables
// a child process needs.
//
// Every endpoint is an envtest/awstest Server: requests are checked with the AWS SDK's own SigV4
// signer and answered in the service's exact wire shapes, so the production clients run against it
// unchanged through BaseEndpoint or the AWS_ENDPOINT_URL_<SERVICE> variables (Env).
//
// It models only what the connector and pod identity flows observe: activations with an expiry and a
// registration limit, managed instances keyed by fingerprint, pod identity associations keyed by
// namespace and service account, access entries keyed by principal ARN, and credentials it issues (which STS then recognises). It is not an
// AWS simulator and deliberately keeps no state beyond the process.
package awsfake
