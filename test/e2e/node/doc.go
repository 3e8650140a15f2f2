// Package node runs a real single-node Kubernetes cluster for end-to-end tests: the control plane of
// envtest (etcd + kube-apiserver) plus kube-controller-manager, kube-scheduler, containerd
// with runc and the standard CNI plugins, and a kubelet, all built from the pinned Kubernetes
// release (make nodebin) or installed from Debian packages (hack/node-deps.sh).
//
// Everything runs as root under one temporary directory: containerd has its own config, root,
// state and socket there (the system containerd service is never used), the kubelet its own
// --root-dir, and pods get addresses from a bridge CNI network on a private /24 that has no route
// or NAT to anything outside the machine. The pod sandbox and test images are built locally in Go
// (see Images) and imported into containerd, so nothing is pulled.
//
// Usage:
//
//	n := node.Start(t, node.Options{}) // node Ready; torn down in t.Cleanup, even when the test fails
//	pod := ... Image: n.Image("probe"), ImagePullPolicy: corev1.PullNever ...
//	n.Env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
//
// Pods reach beyond the bridge only what a workload on an EKS node needs of the node itself: the
// API server through the kubernetes Service address (KubernetesServiceIP:443, passed through by
// the node's own TCP proxy to the API server on the node IP, which answers there with a
// certificate for the Service address signed by the node CA; kube-root-ca.crt carries that CA
// beside the control plane's) and the EKS Pod Identity agent's PodIdentityAgentIPv4 on the host
// network. The API server calls webhooks (and aggregated APIs) behind a Service at a ready
// endpoint's pod address, which the host routes to on the bridge (--enable-aggregator-routing):
// there is no kube-proxy, so no other Service address is served. ServeTLS serves a handler (the tests' local AWS endpoints) on the node IP with a
// certificate the pods' ca.crt verifies. ImportArchive imports the archives "make images" builds;
// WaitReady, WaitPhase, PodLog and Exec wait for pods and reach into them through the API server.
//
// Stop (also run by t.Cleanup) stops the kubelet, stops and removes every pod sandbox through the
// CRI (which kills their containers and releases their network), stops containerd, unmounts what
// the kubelet and containerd mounted, deletes the bridge and the links workloads create on the
// host (PodIdentityAgentLink, which Start requires to be absent), removes the node's cgroups and
// the directory, and reports anything it could not remove as a test failure.
//
// When something the node needs is missing (root, the binaries, containerd, runc, the CNI plugins),
// tests fail if the CI environment variable is set and skip otherwise, saying what to run.
package node
