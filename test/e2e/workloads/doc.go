// Package workloads runs ekslink's shipped workloads on a real node (package node): the connector
// StatefulSet and the EKS Pod Identity agent DaemonSet, each rendered by package manifest and by its
// Helm chart (package charts, Helm's template engine) and applied with server-side apply, with
// the images "make images" builds, against the local AWS endpoints of internal/awsfake served on
// the node IP. The package has tests only.
package workloads
