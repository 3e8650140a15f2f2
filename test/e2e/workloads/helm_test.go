package workloads_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ekslink/ekslink/charts"
	"github.com/ekslink/ekslink/test/e2e/node"
)

// helmInstall is "helm install <release> <chart> -n <ns> --create-namespace" through Helm's Go
// library (action.Install, as the helm command runs it, with a kubeconfig for the cluster's
// administrator): the chart is rendered and validated against its schema, its objects are
// created in Helm's install order and the release is recorded in a Secret.
func helmInstall(t *testing.T, n *node.Node, chart, release, ns string, values map[string]any) {
	t.Helper()
	ch, err := charts.Load(chart)
	if err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig := adminKubeconfig(t, n)
	flags.KubeConfig = &kubeconfig
	flags.Namespace = &ns
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, ns, "secret", func(format string, v ...any) { t.Logf("helm: "+format, v...) }); err != nil {
		t.Fatalf("helm: %v", err)
	}
	install := action.NewInstall(cfg)
	install.ReleaseName = release
	install.Namespace = ns
	install.CreateNamespace = true
	install.Timeout = 2 * time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rel, err := install.RunWithContext(ctx, ch, values)
	if err != nil {
		t.Fatalf("helm install %s %s -n %s: %v", release, chart, ns, err)
	}
	t.Logf("helm: release %s revision %d %s", rel.Name, rel.Version, rel.Info.Status)
}

// adminKubeconfig writes a kubeconfig for the control plane's administrator (client certificate).
func adminKubeconfig(t *testing.T, n *node.Node) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	c := n.Env.Config
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"e2e": {Server: c.Host, CertificateAuthorityData: c.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"admin": {ClientCertificateData: c.CertData, ClientKeyData: c.KeyData}},
		Contexts:       map[string]*clientcmdapi.Context{"e2e": {Cluster: "e2e", AuthInfo: "admin"}},
		CurrentContext: "e2e",
	}
	if err := clientcmd.WriteToFile(cfg, path); err != nil {
		t.Fatal(fmt.Errorf("writing %s: %w", path, err))
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
