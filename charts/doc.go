// Package charts holds ekslink's Helm charts and renders them in Go, without a helm binary.
//
//   - eks-connector: the connector (service account with a projected token, least-privilege
//     RBAC, the impersonation ClusterRole for grantedARNs, the activation Secret, the SSM agent
//     ConfigMap, the StatefulSet). Install into its own namespace:
//     helm install eks-connector ./charts/eks-connector -n eks-connector --create-namespace
//     --set activation.id=... --set activation.code=... --set region=...
//   - eks-pod-identity-agent: the EKS Pod Identity agent DaemonSet (cluster name, bind hosts,
//     ports, metrics address, hybrid-node credentials mount). Install into kube-system.
//   - eks-pod-identity-webhook: the pod identity webhook (minimal RBAC by name, the
//     MutatingWebhookConfiguration with failurePolicy Ignore, self-managed certificates or a
//     mounted cert-manager Secret). Install into its own namespace:
//     helm install pod-identity-webhook ./charts/eks-pod-identity-webhook -n pod-identity-webhook --create-namespace
//
// The charts validate their values up front (values.schema.json plus one message per missing
// value) and render the same objects as package manifest, apart from Helm's own
// labels and the Namespace the renderer creates (Helm creates namespaces with --create-namespace). The
// tests enforce that equivalence and apply every rendering with server-side dry run against a
// real API server.
//
// The connector and agent charts take Helm's global values (global.imageRegistry,
// global.imagePullSecrets; other keys pass through), the usual pod fields (imagePullSecrets,
// podAnnotations, podLabels, affinity, priorityClassName, nodeSelector, tolerations, resources)
// and an optional metrics Service and prometheus-operator ServiceMonitor (metrics.service,
// metrics.serviceMonitor). Their NOTES.txt names only objects, containers and commands that
// exist; a test checks it for every test case.
//
// Render and Load embed the charts so programs can render them without the source tree. The
// package does not install releases (use helm, or manifest.Apply on the rendered YAML) and does not
// publish the charts to a repository.
//
// The package is a module of its own (github.com/ekslink/ekslink/charts, charts/go.mod) so that
// helm and what it pulls in stay out of the SDK module's go.mod: a program that imports only, say,
// package oidc does not download the Helm engine. make test runs this module's tests too.
package charts
