// Package webidentity is a credential backend of the EKS Pod Identity agent's server
// (podidentity.NewServer) for clusters that are not EKS: EKS Anywhere, on-premises, kind, k3s.
// EKS Auth, which the agent calls on EKS, serves EKS clusters only; this backend gets the same
// answer from STS AssumeRoleWithWebIdentity through the cluster's self-hosted OIDC issuer (see
// package oidc and oidc/publish).
//
//	ix := association.NewIndex(kube, association.IndexOptions{})
//	go ix.Run(ctx)
//	backend, err := webidentity.NewFromConfig(cfg, kube, ix, func(o *webidentity.Options) { o.NodeName = node })
//	err = backend.Start(ctx)                            // keys read, pods and associations synced
//	srv, err := podidentity.NewServer(backend, podidentity.ServerOptions{ClusterName: "onprem"})
//
// For each request the server does not answer from its cache, the backend:
//
//  1. verifies the pod's projected token locally: signature against the API server's own key set
//     (its discovery document and JWKS, read at start, every KeyRefreshInterval and when a token
//     names an unknown key id, at most every 10 s), issuer, audience pods.eks.amazonaws.com, expiry,
//     and a kubernetes.io claim binding it to a pod. A TokenReview would do the same checks in
//     the API server, but costs an API call per new token and makes every exchange depend on the
//     API server; the keys are public (system:service-account-issuer-discovery) and change rarely;
//  2. checks that the pod still exists with that uid (an informer on the node's pods, stripped to
//     name, uid and node; a pod not yet in the cache is read once), and runs on Options.NodeName;
//  3. looks up the service account's association in the Index (memory, no API call): none is
//     ResourceNotFoundException, which the server answers 404 at once;
//  4. calls STS AssumeRoleWithWebIdentity with the pod's own token. The IAM OIDC provider must list
//     pods.eks.amazonaws.com as a client id, and the role's trust policy must allow
//     <issuer>:sub system:serviceaccount:<namespace>:<serviceAccount> with <issuer>:aud
//     pods.eks.amazonaws.com. This is the least-privilege choice: the agent can only use tokens
//     pods present to it. The alternative, requesting a token with audience sts.amazonaws.com for
//     the service account (TokenRequest), would need create on serviceaccounts/token for every
//     service account of the cluster on every node: a compromised node could then become any
//     service account that has an association. The cost is the extra client id, and that a pod
//     token is accepted by STS directly too (as an IRSA token is; the trust policy still binds it
//     to its service account).
//
// Sessions: by default one session per (service account, role), named
// eks-<cluster>-<namespace>-<serviceAccount>, shared by every pod of the service account: one STS
// call per refresh however many pods share it. Credentials are shared while younger than
// ShareFraction (35%) of their lifetime; the server refreshes from 40% on, so a refresh always gets
// newer credentials. Options.PerPodSessions gives each pod its own session named
// eks-<cluster>-<pod>-<hash of pod uid> (as EKS names them), at one STS call per pod.
//
// Session tags: EKS Pod Identity tags its sessions (eks-cluster-arn, eks-cluster-name,
// kubernetes-namespace, kubernetes-service-account, kubernetes-pod-name, kubernetes-pod-uid).
// AssumeRoleWithWebIdentity takes session tags only from the token's https://aws.amazon.com/tags
// claim, which a Kubernetes-issued token cannot carry; this backend therefore sets none, and
// policies using ${aws:PrincipalTag/kubernetes-namespace} do not work with it. The session name
// and the trust policy's sub condition carry the identity instead.
//
// STS outage: when STS cannot be reached (or the issuer it reads), a pod whose token verified
// locally gets the cached credentials of its service account and role while they are valid for
// longer than OutageMinValidity; with nothing cached it gets a retryable 503. Refusals keep EKS
// Auth's codes (podidentity.AuthError), so the server's answers, refusal caching and metrics are
// those of the EKS Auth path; AuthError.ClientMessage tells the pod what was found.
//
// Metrics (Options.Registerer): ekslink_pod_identity_webidentity_sts_calls_total{outcome},
// ekslink_pod_identity_webidentity_answers_total{source} (sts, in_flight, shared, outage) and
// ekslink_pod_identity_webidentity_refusals_total{reason} (refusals before STS); the server's own
// metrics count the backend's calls as upstream calls.
//
// RBAC the agent needs: get, list, watch on pods (the node's, with a spec.nodeName field
// selector); get, list, watch on the associations ConfigMap (resourceNames); the API server's
// /.well-known/openid-configuration and /openid/v1/jwks (granted to all service accounts by
// default). No create on serviceaccounts/token.
package webidentity
