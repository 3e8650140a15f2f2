// Package iamarn parses the IAM principal ARNs that AWS authenticates and knows the AWS partitions
// they live in. Everything in ekslink that reads an ARN (the impersonating proxy, EKS tokens and
// access entries, the aws-auth editor, the connector's RBAC) or derives an endpoint from a region
// (SSM, STS, IAM OIDC providers) goes through it, so every partition is handled the same way.
//
// The entry points are [Parse] for ARNs and [PartitionForRegion] for regions:
//
//	p, err := iamarn.Parse("arn:aws:sts::111122223333:assumed-role/Admin/alice")
//	// p.Kind == iamarn.AssumedRole, p.Canonical() == "arn:aws:iam::111122223333:role/Admin"
//
//	part, err := iamarn.PartitionForRegion("cn-north-1")
//	// part.ID == "aws-cn", part.DNSSuffix == "amazonaws.com.cn"
//
// Principals are users, roles, assumed-role sessions, account roots and federated users, in the
// partitions aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f and aws-eusc.
// Canonicalization follows EKS and aws-iam-authenticator: an STS assumed-role session ARN
// "arn:<p>:sts::<acct>:assumed-role/<role>/<session>" maps to the role ARN
// "arn:<p>:iam::<acct>:role/<role>" (no path: STS drops it), with the session name kept
// separately; other principal ARNs are kept as given.
//
// aws-sdk-go-v2 keeps its partition table in internal packages, so the few facts ekslink needs
// (which partition a region is in, the DNS suffix of its endpoints, the dual-stack suffix) are here.
// An unknown or malformed region is an error, never a silent fallback to the commercial partition.
//
// The name is iamarn rather than arn so that it can be imported next to aws-sdk-go-v2's aws/arn
// (a generic ARN splitter, which knows neither principals nor partitions) without an alias.
//
// Errors are typed: [*ParseError] (matching [ErrInvalid]) for ARNs and [*RegionError] (matching
// [ErrInvalidRegion]) for regions.
package iamarn
