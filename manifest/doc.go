// Package manifest renders the Kubernetes objects that deploy ekslink's agents: the EKS Connector
// (RenderConnector), the EKS Pod Identity agent (RenderPodIdentityAgent) and the pod identity
// webhook (RenderWebhook), as typed objects or
// as YAML, and applies them with server-side apply (Apply, through package manifest/apply, the one
// apply helper ekslink has). It is the renderer for every workload ekslink deploys; the flag names
// it writes into container arguments are the constants of package manifest/flagname, which the
// binaries define their flags with.
//
// Every workload takes the same pod fields (PodOptions, written into the pod template by
// ApplyPodOptions: pull secrets, annotations, labels, affinity, priority class, node selector,
// tolerations, resources) and an image registry for a mirror (ImageWithRegistry); the connector
// and the agent also render an optional metrics Service and prometheus-operator ServiceMonitor
// (MetricsOptions). The defaults and checks they share are written once (defaults.go).
//
// The connector deployment is least privilege by construction:
//
//   - The service account does not automount a token; the init and proxy containers get a
//     projected token with an expiry (plus kube-root-ca.crt), the SSM agent container gets none.
//     No legacy service-account token Secret is created.
//   - The state Secrets (<prefix>-<ordinal>) are rendered empty, and the Role allows only get and
//     update on them, by name: no create (RBAC cannot restrict it by name), patch, list or watch.
//     The activation
//     Secret is not readable through the API at all: the kubelet mounts it into the init
//     container, so a stolen token cannot register further instances with the activation.
//   - The impersonation ClusterRole (package impersonation/rbac) names exactly the granted ARNs. With
//     no granted ARNs none is rendered, so the proxy can act for nobody.
//   - The activation code sits in a Secret mounted as a file in the init container only; it is
//     never in container arguments or environment variables.
//   - The namespace enforces Pod Security "baseline".
//   - Every container drops all capabilities but DAC_OVERRIDE, cannot escalate privileges and
//     uses the RuntimeDefault seccomp profile; init and proxy also have a read-only root
//     filesystem, and the proxy mounts the vault read-only. They run as root because the
//     unmodified SSM agent "hardens" its vault on every start (chmod 0600, chown root:root, fatal
//     on failure): a non-root init would write files the agent cannot harden, and a non-root
//     proxy could not read the key the agent rotates. This is the EKS Connector's own model.
//
// The webhook deployment registers the webhook with failurePolicy Ignore (it never blocks pod
// creation), runs it non-root with a read-only root filesystem and no capabilities, and by default
// lets it manage its own CA and serving certificate (an empty Secret it fills, and the caBundle of
// its own MutatingWebhookConfiguration, both by name: the RBAC names them); TLSSecretName mounts a
// cert-manager or hand-made certificate instead.
//
// ConnectorTemplate, PodIdentityAgentTemplate and WebhookTemplate produce the checked-in YAML under deploy/ with
// %PLACEHOLDERS% for sed (Substitute does the same in Go).
//
// The package does not register clusters (see registration and eksauth), does not wait for
// rollouts and does not delete objects that an earlier, different rendering created.
package manifest
