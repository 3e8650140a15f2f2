// Package interop checks ekslink's packages against the real peer code that consumes their output,
// through their exported API only: here, coreos/go-oidc (the relying-party library many STS-like
// verifiers use) discovering and verifying against package oidc's Handler.
//
// It is a module of its own (test/interop/go.mod, run by make test) so that the peers' libraries
// are requirements of this module only and not of the SDK's go.mod: a program importing ekslink
// does not download a library that only a test of ekslink needs. Peer checks that need a
// package's unexported internals stay beside that package.
package interop
