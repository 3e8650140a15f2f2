package envtest

import (
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeconfigFile writes a kubeconfig with one context, for server (verified with caPEM) and auth,
// to a new file in a test directory and returns its path: what a binary under test reads with
// --kubeconfig, or what kube-apiserver reads for a webhook (--authentication-token-webhook-config-file).
func KubeconfigFile(t testing.TB, server string, caPEM []byte, auth *clientcmdapi.AuthInfo) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	kc.AuthInfos["test"] = auth
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// KubeconfigFile is KubeconfigFile for this API server.
func (e *Environment) KubeconfigFile(t testing.TB, auth *clientcmdapi.AuthInfo) string {
	t.Helper()
	return KubeconfigFile(t, e.URL, e.CAPEM, auth)
}
