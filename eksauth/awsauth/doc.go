// Package awsauth edits the kube-system/aws-auth ConfigMap that maps IAM roles, users and accounts
// to Kubernetes users and groups on EKS clusters in CONFIG_MAP or API_AND_CONFIG_MAP mode.
//
// Config is a typed model of mapRoles, mapUsers and mapAccounts, read as aws-iam-authenticator's
// ParseMap reads them, that keeps what it does not understand: every entry an edit does not change
// is written back byte for byte (comments included), and a changed entry keeps its unknown fields
// (sso, userid, ...) as written. Entries are matched by canonical ARN, case-insensitively; role ARNs
// lose their path (aws-auth cannot match paths) with a warning.
//
// Editor applies an edit with optimistic concurrency: it reads the ConfigMap, applies the edit,
// writes with the resourceVersion it read, and re-reads and re-applies on conflict. It writes nothing
// when nothing changes, creates the ConfigMap when it is missing, validates the result (ARNs and
// partitions, username templates, non-empty usernames and groups, duplicates), and refuses to
// remove the last system:masters mapping or a node role's mapping unless forced. Problems that were
// already there are warnings, matched by entry rather than position. An edit that would rewrite
// entries it was not asked to change fails with ErrRewrite. A dry run returns a readable diff. A
// list it cannot parse is reported with ErrMalformed and written back untouched (rewriting it would
// drop the entries the authenticator could not read either, locking out nodes); as the
// authenticator reads each list on its own, edits of the other lists still go through.
//
// It does not manage EKS access entries (see eksauth.AccessEntries) and cannot tell whether the
// cluster reads aws-auth at all: on clusters in API authentication mode the ConfigMap is ignored.
package awsauth
