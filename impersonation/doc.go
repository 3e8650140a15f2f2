// Package impersonation forwards Kubernetes API requests as another identity, safely: it is what
// the connector's proxy runs and what users embed in their own proxies.
//
// The building blocks compose like client-go's transport wrappers:
//
//   - Transport is the upstream side, built once: the proxy's own credentials (a service-account
//     token and CA reloaded in the background from files, including kubelet's "..data" symlink
//     swaps; a 401 forces a re-read), HTTP/2 connection reuse for normal requests and a separate
//     HTTP/1.1 path for exec/attach/port-forward upgrades.
//   - RoundTripper takes the Identity from the request context (WithIdentity), removes every
//     client-supplied credential, impersonation, X-Remote-*, forwarding and hop-by-hop header,
//     and sets Impersonate-User/-Uid/-Group/-Extra-*. Being a RoundTripper, it runs after any
//     reverse-proxy hop-by-hop processing, so "Connection: Impersonate-User" cannot remove it.
//   - Handler is a complete fail-closed http.Handler: identity from a header (default
//     x-aws-eks-identity-arn) or any IdentityFunc, IAM ARN validation for every partition,
//     configurable username mapping (default: Impersonate-User with the ARN as given and
//     nothing else, as the EKS Connector does, so the RBAC AWS documents for it suffices;
//     Config.UserExtras adds the ARN and the assumed-role session name as user extras),
//     streaming with immediate flushes,
//     metav1.Status errors (401/403 for identities, 502/503/504 for upstream failures) and
//     Prometheus metrics on a caller-supplied registry.
//
// What it deliberately does not do: authenticate callers (the identity source, such as the SSM
// channel or a verified mTLS certificate, is trusted by construction), impersonate groups or
// "system:" names by default, use exec or auth-provider plugins for its own credentials, or
// serve HTTP itself (see cmd/eks-connector for a binary that does). The RBAC the proxy needs (the
// impersonation ClusterRole for its service account) and the console RBAC for the principals it
// acts for are rendered and applied by the sub-package impersonation/rbac.
package impersonation
