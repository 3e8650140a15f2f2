// Package workloads runs ekslink's shipped workloads on a real node (package node): the connector
// StatefulSet, the EKS Pod Identity agent DaemonSet and the pod identity webhook Deployment, each
// rendered by package manifest and applied with server-side apply (manifest.Apply), and installed
// from its Helm chart with Helm's Go library (action.Install, what "helm install" runs), with the
// images "make images" builds, against the local AWS endpoints of envtest/awsfake served on the
// node IP. The package has tests only.
package workloads
