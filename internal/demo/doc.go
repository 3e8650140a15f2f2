// Package demo runs the connector end to end on loopback: a real control plane (etcd +
// kube-apiserver from envtest), the embedded AWS endpoints of envtest/awsfake, the
// connector's init and proxy processes, console access for two IAM ARNs, the pod identity agent
// with the AWS SDK as its client, OIDC documents checked against a real service-account token, and
// IRSA end to end: the pod identity webhook mutates a pod, and a workload process running the AWS
// SDK with that pod's environment trades its projected token at STS AssumeRoleWithWebIdentity.
//
// `make demo` runs it with a transcript; the end-to-end test runs the same Run without one. It
// needs the control-plane binaries (`make testbin`) and builds the reference binaries it runs with
// `go build` unless Options.BinDir already holds them. It is a program in library form, not an API:
// nothing outside this module should import it.
package demo
