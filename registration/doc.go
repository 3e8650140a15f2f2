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
//   - RegisterCluster/DeregisterCluster wrap EKS's API for connected clusters.
//
// It deliberately does not run or configure the SSM agent, does not deregister managed instances
// (orphans are reported, never deleted), and does not render Kubernetes manifests (see
// manifest). Activation codes and private keys are never logged.
package registration
