// Package eksauth checks package eksauth's tokens with aws-iam-authenticator's own verifier
// (sigs.k8s.io/aws-iam-authenticator pkg/token) pointed at a local STS, directly and behind a real
// kube-apiserver's token webhook, through eksauth's exported API only.
package eksauth
