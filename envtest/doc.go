// Package envtest runs a real Kubernetes control plane, etcd and kube-apiserver, on loopback, for
// tests of code that talks to the API server: ekslink's own tests and those of programs that embed
// its packages (an impersonation.Handler in your proxy, a statestore.Secret, an
// impersonation/rbac grant). It works like controller-runtime's envtest. The entry point is
// Environment:
//
//	env := &envtest.Environment{}   // every field is optional
//	cfg, err := env.Start()         // *rest.Config of a system:masters administrator
//	...
//	err = env.Stop()
//
// The API server runs with TLS, RBAC authorization, client-certificate admin access and a
// service-account issuer whose signing keys the caller may choose (SigningKeys, Issuer), so tests
// exercise real RBAC, impersonation, TokenRequest, Secrets, ConfigMaps, admission webhooks and
// OIDC discovery. No controller manager or scheduler runs: create service accounts explicitly;
// pods are stored, never started.
//
// # Binaries
//
// kube-apiserver and etcd are looked up in this order (FindBinaries): Environment.BinaryAssetsDirectory;
// $EKSLINK_TESTBIN_DIR; $KUBEBUILDER_ASSETS, controller-runtime's variable, so a directory set up
// by `setup-envtest use -p path` works as it is; then the cache that `make testbin` in the ekslink
// repository builds (hack/testbin.sh: ~/.cache/ekslink/testbin/<KubernetesVersion>-<EtcdVersion>).
// When they are missing, Start returns a *BinariesNotFoundError that names all three places.
//
// # In tests
//
// The testing.TB helpers decide between failing and skipping when the binaries are missing: the
// test fails if the CI environment variable is set and is skipped otherwise, with the message
// above. Use them like this:
//
//	func TestMain(m *testing.M) { envtest.Main(m) }  // stops the shared control plane at the end
//
//	func TestSomething(t *testing.T) {
//		env := envtest.Shared(t)                 // one control plane per test binary
//		ns := env.Namespace(t)                   // a fresh namespace for this test
//		env.CreateServiceAccount(t, ns, "app")
//		token := env.Token(t, ns, "app", nil, 0) // TokenRequest
//		env.Grant(t, ns, "read", envtest.UserSubject("arn:aws:iam::111122223333:role/dev"), rules)
//		...
//	}
//
// Start(t, &Environment{...}) gives a test a private control plane (its own keys or issuer, or
// one it stops and restarts with StopAPIServer and StartAPIServer), stopped at the test's cleanup.
// NewServingCert, NewCA and RegisterPodWebhook serve admission webhooks and other servers the API
// server calls.
//
// Local AWS endpoints for the same tests are in the sub-packages: envtest/awstest (a SigV4
// verifying server for any AWS protocol) and envtest/awsfake (EKS, SSM, EKS Auth and STS).
package envtest
