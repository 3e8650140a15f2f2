// Package ekslink is a Go SDK, with thin reference binaries, that connects any Kubernetes cluster
// (EKS Anywhere, on-premises, kind, k3s) to AWS.
//
// The SDK replaces the EKS Connector, the EKS Pod Identity agent, the self-hosted IRSA scripts,
// aws-iam-authenticator's token code and hand-edited aws-auth ConfigMaps with independent packages
// that are correct on the wire, fail closed, and are faster than the tools they replace:
//
//   - impersonation: an http.RoundTripper and http.Handler that forward a request to the
//     Kubernetes API server as an AWS IAM identity, authenticated with the proxy's own
//     service-account token. Embeddable in any proxy.
//   - statestore: a small versioned document store (memory, file, Kubernetes Secret) with
//     compare-and-swap saves.
//   - registration: crash-safe SSM hybrid-activation registration of the connector agent, the SSM
//     agent's vault files, and the rotated-key sync loop.
//   - oidc: OIDC discovery and JWKS for self-hosted IRSA, byte-identical to kube-apiserver's.
//   - eksauth: EKS bearer tokens, rest.Config and kubeconfig for EKS, and a safe aws-auth editor.
//   - podidentity: the Pod Identity credential agent and the EKS Auth API client it calls.
//   - iamarn: IAM principal ARNs (parsing, the canonical form) and AWS partitions (region to
//     partition, DNS suffixes), shared by every package above.
//   - envtest: the test harness, public for programs that embed these packages: a real etcd and
//     kube-apiserver (Environment.Start returns a rest.Config), and under it awstest (local AWS
//     endpoints that verify SigV4 with the SDK's signer) and awsfake (EKS, SSM, EKS Auth, STS).
//
// # The connector pod
//
// A StatefulSet pod with three containers sharing two emptyDirs (/var/eks/shared and the SSM vault):
//
//	init container (cmd/eks-connector init)
//	    statestore.Secret <-> registration.Ensure --RegisterManagedInstance--> SSM
//	    registration.WriteVault --> /var/lib/amazon/ssm/Vault (Manifest, RegistrationKey, InstanceFingerprint)
//	SSM agent container (unmodified AWS SSM agent, container mode)
//	    reads the vault, rotates the key every 7 days, forwards EKS console requests to
//	    unix:///var/eks/shared/connector.sock with x-aws-eks-identity-arn: <IAM ARN>
//	proxy container (cmd/eks-connector proxy)
//	    impersonation.Handler: x-aws-eks-identity-arn --> Impersonate-User, own SA token -->
//	    https://kubernetes.default.svc; the rotated-key sync loop copies the agent's new key back
//	    into the Secret.
//
// # The pod identity flow
//
//	pod (AWS SDK) --GET /v1/credentials, Authorization: <projected SA token>--> 169.254.170.23
//	    podidentity agent (one shared cache, single flight, refresh-ahead)
//	        --SigV4 POST /clusters/<name>/assume-role-for-pod-identity--> EKS Auth API
//	    <-- {"AccessKeyId","SecretAccessKey","Token","AccountId","Expiration"}
//
// Packages take context.Context first, accept injected aws.Config, rest.Config or
// kubernetes.Interface, logr.Logger, clocks and http.Clients, and return typed errors for errors.Is
// and errors.As. Nothing below cmd/ and examples/ exits the process or uses global state.
package ekslink
