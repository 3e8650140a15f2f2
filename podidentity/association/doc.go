// Package association keeps EKS Pod Identity associations (which IAM role the pods of a
// namespace/serviceAccount get) in the cluster itself, for the agent's web identity backend
// (podidentity/webidentity) on clusters that are not EKS.
//
// Associations live in one ConfigMap (default kube-system/ekslink-pod-identity-associations), one
// key per service account, "<namespace>.<serviceAccount>" (a namespace name has no dot, so the
// first dot separates them), each value a JSON object {"roleArn":"arn:aws:iam::..."}. A ConfigMap
// rather than a CustomResourceDefinition because:
//
//   - nothing has to be installed first: the agent and the CLI work on any cluster at once;
//   - RBAC can name the one object (resourceNames), so the agent reads this ConfigMap and no other
//     (get, list, watch with a metadata.name field selector), and only whoever may update it can
//     change associations; a CRD would need a cluster-wide grant on a new type for the same effect;
//   - one informer on one object gives the agent the whole table in one watch event;
//   - it is a drop-in, inspectable with kubectl and diffable in GitOps.
//
// What a CRD would do better, and what this package does instead: a CRD's OpenAPI schema validates
// on write; here every write goes through Validate, and the read side (Index) skips and reports
// entries that do not validate (a hand edit), so the agent never serves an invalid association.
// Size: the API server limits a ConfigMap's values to 1 MiB in total, and etcd a request to
// 1.5 MiB: about 15,000 associations with role ARNs of 65 characters (12,000 measured: accepted,
// 1.1 MB of keys and values; an Index of 10,000 takes about 6.5 MiB of heap, informer copy
// included). Namespaced RBAC per association (a team managing its own namespace's associations)
// would need a namespaced CRD.
//
// Store writes (Create, Delete) with the resourceVersion read, retrying on conflict, and is
// idempotent: creating an existing association with the same role, or deleting a missing one, is
// not an error and changes nothing. Index is the read side of the agent and of the webhook
// (webhook.Options.Associations): an informer on the ConfigMap, a Lookup that never calls the API
// server, and IndexOptions.OnChange for a reader that derives its own table from every change.
package association
