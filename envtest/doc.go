// Package envtest starts a real Kubernetes control plane (etcd + kube-apiserver, built from the Go
// module proxy by hack/testbin.sh) on loopback for tests.
//
// The API server runs with TLS, RBAC authorization, client-certificate admin access and a
// service-account issuer whose signing keys the test chooses, so tests exercise real RBAC,
// impersonation, TokenRequest, Secrets, ConfigMaps and OIDC discovery.
//
// Usage:
//
//	func TestMain(m *testing.M) { envtest.Main(m) }  // stops the shared control plane at the end
//
//	func TestSomething(t *testing.T) {
//		env := envtest.Shared(t)               // one control plane per test binary
//		ns := env.Namespace(t)                 // a fresh namespace for this test
//		...
//	}
//
// Use Start for a private control plane (custom keys, issuer, or one a test stops and restarts).
//
// When the binaries are missing, tests fail if the CI environment variable is set and skip otherwise,
// with a message that says to run "make testbin".
package envtest
