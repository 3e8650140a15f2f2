// Package iamarn parses and canonicalizes the IAM principal ARNs that AWS authenticates
// (users, roles, assumed-role sessions, account roots, federated users) for every partition.
//
// Canonicalization follows what EKS and aws-iam-authenticator do: an STS assumed-role session ARN
// "arn:<p>:sts::<acct>:assumed-role/<role>/<session>" maps to the role ARN
// "arn:<p>:iam::<acct>:role/<role>" (no path: STS drops it), and the session name is kept
// separately. Other principal ARNs are kept as given.
package iamarn
