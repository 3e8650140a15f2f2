// Package rbac renders and applies the Kubernetes RBAC that lets IAM principals see a cluster
// through the EKS console via the connector.
//
// Two object sets are produced, both as typed rbac/v1 objects and as YAML:
//
//   - ConsoleRBAC: read-only console access for a list of IAM ARNs (the user names the connector
//     impersonates), cluster-wide or restricted to namespaces. It replaces the YAML that the EKS
//     Connector guide has administrators write by hand. Secrets are deliberately not readable: the
//     connector's own state Secret holds its SSM private key.
//   - ImpersonationClusterRole: the ClusterRole and ClusterRoleBinding that let the connector's
//     service account impersonate exactly those ARNs (verb impersonate on users with resourceNames,
//     the RBAC AWS documents for the EKS Connector), and nothing else. Only with
//     ImpersonationOptions.UserExtras does it also grant userextras/arn and userextras/sessionname,
//     for a proxy that sends those extras. An empty ARN list is an error, never a role that may
//     impersonate everyone.
//
// Apply writes an object set with server-side apply (package manifest/apply) under one field
// manager, so repeated applies converge and fields owned by others are kept. Its errors are
// *ApplyError, the same type manifest.Apply returns.
//
// Apply also removes the console bindings an earlier render under the same name left behind when
// access is narrowed (the cluster-wide binding once namespaces are given, RoleBindings of namespaces
// no longer listed), so a restriction never leaves the broader grant in place.
//
// After the fact, ListAccess reads who can reach the cluster through the connector: the ARNs in the
// impersonation ClusterRole's resourceNames (the seed's "eks-connector-service" or the rendered
// DefaultImpersonationName) and every ClusterRoleBinding and RoleBinding naming each as a user.
// Revoke takes one ARN out: an update of the ClusterRole carrying the resourceVersion it read
// (retried on conflict; a rule left without names is removed, since an empty resourceNames would
// allow every user), then the bindings whose only subject is the ARN are deleted and the others
// trimmed, each write preconditioned on the object read. A role that allows every user is
// reported (AccessList.Unrestricted) and Revoke refuses it (ErrUnrestrictedImpersonation).
//
// The package does not decide who gets access (that is the caller's policy), does not edit
// aws-auth (see package awsauth) and does not remove other objects left over from earlier object
// sets (a ClusterRole under another name): delete those by label (LabelManagedBy) if needed.
package rbac
