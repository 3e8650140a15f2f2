// Package eksauth reaches Amazon EKS clusters from Go without the aws or kubectl CLIs.
//
// It produces and checks the "k8s-aws-v1." bearer tokens that EKS (aws-iam-authenticator)
// accepts: presigned STS GetCallerIdentity URLs for the right partition's regional endpoint
// (FIPS and dual-stack on request, the legacy global endpoint only when asked for), with the
// x-k8s-aws-id header signed and X-Amz-Expires=60. TokenGenerator checks its own output against the
// verifier's rules (ParseToken) and returns an error instead of a token EKS would reject.
// TokenSource caches and refreshes tokens ahead of expiry; NewTransport and ConfigureREST put it in
// front of client-go so a rest.Config never carries a dead token (refresh before expiry, reset and
// one retry on 401). ExecCredential renders the client.authentication.k8s.io v1/v1beta1 output of
// a kubectl exec plugin, honouring KUBERNETES_EXEC_INFO.
//
// DescribeCluster and Cluster.RESTConfig build a rest.Config from the EKS DescribeCluster API;
// Kubeconfig renders a kubeconfig with an exec stanza, WriteTempKubeconfig writes it to a private
// temporary file, and MergeKubeconfig updates an existing kubeconfig as "aws eks
// update-kubeconfig" does (locked as kubectl locks it, backed up, written atomically).
// AccessEntries grants, lists and revokes EKS access entries and their policy associations for
// clusters whose authentication mode is API or API_AND_CONFIG_MAP; PlanMigration and
// AccessEntries.Migrate turn an aws-auth ConfigMap into the equivalent access entries, as the EKS
// User Guide's "Migrating existing aws-auth ConfigMap entries to access entries" describes.
//
// The aws-auth ConfigMap editor lives in eksauth/awsauth and the console RBAC in
// impersonation/rbac. The EKS Auth API client (AssumeRoleForPodIdentity) and the rotating shared
// credentials file of hybrid nodes serve only the pod identity agent and live with it, in package
// podidentity.
//
// It deliberately does not call STS to verify tokens (an authenticator does that after ParseToken),
// does not cache credentials (aws.Config's provider does), and never falls back to us-east-1 or
// the commercial partition when a region is missing or unknown.
package eksauth
