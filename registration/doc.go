// Package registration connects a cluster's SSM agent to AWS the way the EKS Connector's init
// container must, without its failure modes:
//
//   - Client calls SSM RegisterManagedInstance (anonymous awsJson1.1, not in the public SDK model)
//     with per-attempt and overall deadlines, jittered retries only for throttling, 5xx,
//     TooManyUpdates and network errors, and typed final errors (ErrActivationExpired, ...).
//   - Registrar.Ensure is the crash-safe, idempotent flow over a statestore.Store: key material is
//     persisted as pending before SSM is called and the instance id recorded after, so restarts never
//     register twice with different material and never lose a registration; replaced registrations
//     are kept as orphans for the operator.
//   - WriteVault/ReadVault write and read the SSM agent's vault (Manifest, Store/RegistrationKey,
//     Store/InstanceFingerprint) byte for byte as the agent expects.
//   - KeySync copies keys the agent rotates in the vault back into the store, forever, with
//     readiness and metrics. The private key is the truth: the agent's rotated record keeps a stale
//     or empty publicKey, so the public key is always derived from the private key.
//   - RegisterCluster/DeregisterCluster wrap EKS's API for connected clusters; EnsureCluster
//     registers only when EKS lacks the cluster, and WriteActivationFile keeps the activation (0600).
//   - EnsureConnectorIAM makes the connector's IAM set-up exist (the service-linked role of
//     eks-connector.amazonaws.com, the agent role with AgentTrustPolicy and AgentPolicy, tags),
//     writing only what differs from IAM's copy (documents compared by meaning).
//   - LoadReplicas reads the replicas' state Secrets; GetConnectorStatus turns EKS DescribeCluster
//     and SSM DescribeInstanceInformation into one verdict (Connected, Degraded, NotConnected)
//     with reasons.
//   - CleanupOrphans deregisters, on a live cluster, the managed instances no replica owns
//     (recorded orphans, and instances of the activation no state holds); Deregister removes the
//     cluster and every managed instance. Both treat what is already gone as done.
//
// The Registrar itself never deregisters: it records replaced registrations as orphans, which
// CleanupOrphans removes when an operator runs it. The package does not run or configure the SSM
// agent and does not render Kubernetes manifests (see manifest). Activation codes and private keys
// are never logged. The ekslink command "ekslink connector" is built on these calls
// (docs/connector.md).
package registration
