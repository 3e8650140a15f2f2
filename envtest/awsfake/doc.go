// Package awsfake is an embedded set of AWS endpoints for tests, the demo and the end-to-end
// tests: EKS (RegisterCluster, DeregisterCluster, DescribeCluster of registered clusters and of
// EKS clusters added with Set.AddCluster, whose access entries and policy associations it keeps:
// Create/List/Describe/DeleteAccessEntry, Associate/Disassociate/ListAssociatedAccessPolicies, with
// EKS's refusals), SSM (RegisterManagedInstance, anonymous;
// DescribeInstanceInformation and DeregisterManagedInstance, signed), EKS Auth
// (AssumeRoleForPodIdentity), STS (GetCallerIdentity, signed or presigned;
// AssumeRoleWithWebIdentity, unsigned) and IAM (roles: GetRole, CreateRole, UpdateAssumeRolePolicy,
// GetRolePolicy, PutRolePolicy, TagRole, CreateServiceLinkedRole; OIDC providers:
// List/Get/CreateOpenIDConnectProvider, AddClientIDToOpenIDConnectProvider,
// UpdateOpenIDConnectProviderThumbprint). The entry point is Start, which returns a Set of running
// endpoints; Set.Config gives an aws.Config for them and Set.Env the environment variables a child
// process needs. Set.Fail queues error answers (throttling, access denied, not found) for any
// operation of any endpoint, in that endpoint's protocol, and Set.Calls counts each operation's
// requests, so a test can check that a second run writes nothing.
//
// IAM is one model: the roles and OIDC providers made through the IAM endpoint (as
// registration.EnsureConnectorIAM and oidc/publish make them), with Set.CreateRole and
// Set.CreateOIDCProvider, or stored with Set.PutRole and Set.PutOIDCProvider are the ones STS
// AssumeRoleWithWebIdentity evaluates: the token's issuer must be a provider, its audience one of
// the provider's client ids, and the role's trust policy must allow it, as they are at the time of
// the call.
//
// Every endpoint is an envtest/awstest Server: requests are checked with the AWS SDK's own SigV4
// signer and answered in the service's exact wire shapes, so the production clients run against it
// unchanged through BaseEndpoint or the AWS_ENDPOINT_URL_<SERVICE> variables (Env).
//
// It models only what the connector and pod identity flows observe: activations with an expiry and a
// registration limit, managed instances keyed by fingerprint (with the agent's heartbeat recorded by
// Set.Ping in place of UpdateInstanceInformation), IAM roles with inline policies and tags, pod
// identity associations keyed by namespace and service account, access entries keyed by principal
// ARN, and credentials it issues (which STS then recognises). oidc/publish/publishtest serves S3
// beside this IAM (publishtest.NewIAM is a Set's IAM endpoint). It is not an AWS simulator and
// deliberately keeps no state beyond the process.
package awsfake
