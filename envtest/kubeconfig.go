package envtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
)

// KubeconfigFile writes a kubeconfig with one context, for server (verified with caPEM) and auth,
// to a new file in a test directory and returns its path: what a binary under test reads with
// --kubeconfig, or what kube-apiserver reads for a webhook (--authentication-token-webhook-config-file).
// It is written as JSON, which every kubeconfig reader accepts, so that this package does not
// pull clientcmd (and its flag library) into the modules that use it.
func KubeconfigFile(t testing.TB, server string, caPEM []byte, auth clientcmdv1.AuthInfo) string {
	t.Helper()
	kc := clientcmdv1.Config{
		APIVersion:     "v1",
		Kind:           "Config",
		Clusters:       []clientcmdv1.NamedCluster{{Name: "test", Cluster: clientcmdv1.Cluster{Server: server, CertificateAuthorityData: caPEM}}},
		AuthInfos:      []clientcmdv1.NamedAuthInfo{{Name: "test", AuthInfo: auth}},
		Contexts:       []clientcmdv1.NamedContext{{Name: "test", Context: clientcmdv1.Context{Cluster: "test", AuthInfo: "test"}}},
		CurrentContext: "test",
	}
	data, err := json.Marshal(kc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// KubeconfigFile is KubeconfigFile for this API server.
func (e *Environment) KubeconfigFile(t testing.TB, auth clientcmdv1.AuthInfo) string {
	t.Helper()
	return KubeconfigFile(t, e.URL, e.CAPEM, auth)
}
