// Package interop checks ekslink's packages against the real peer code that consumes their output,
// through their exported API only: here, coreos/go-oidc (the relying-party library many STS-like
// verifiers use) discovering and verifying against package oidc's Handler; in test/interop/eksauth,
// aws-iam-authenticator's token verifier (pkg/token) accepting eksauth's tokens, also behind a real
// kube-apiserver's token webhook; in test/interop/awsauth, aws-iam-authenticator's ParseMap
// (pkg/mapper/configmap) reading what awsauth's editor writes.
//
// It is a module of its own (test/interop/go.mod, run by make test) so that the peers' libraries
// are requirements of this module only and not of the SDK's go.mod: a program importing ekslink
// does not download a library that only a test of ekslink needs. Tests that need no peer library
// stay beside their package.
package interop
