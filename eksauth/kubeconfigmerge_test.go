package eksauth_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ekslink/ekslink/eksauth"
)

const prodARN = "arn:aws:eks:us-west-2:111122223333:cluster/prod"

func prodCluster(t *testing.T) *eksauth.Cluster {
	t.Helper()
	// The CA bytes are only carried into the kubeconfig; their content does not matter here.
	ca := []byte("-----BEGIN CERTIFICATE-----\nZWtzbGluaw==\n-----END CERTIFICATE-----\n")
	return &eksauth.Cluster{Name: "prod", ARN: prodARN, Region: "us-west-2", Endpoint: "https://prod.gr7.us-west-2.eks.amazonaws.com", CAData: ca}
}

// otherKubeconfig is a kubeconfig with a kind cluster as current context, a preference and an
// extension on the context, the file "aws eks update-kubeconfig" is run against.
func otherKubeconfig(t *testing.T, path string) []byte {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kind-dev"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:43210", InsecureSkipTLSVerify: true}
	kc.AuthInfos["kind-dev"] = &clientcmdapi.AuthInfo{Token: "kind-token"}
	kc.Contexts["kind-dev"] = &clientcmdapi.Context{Cluster: "kind-dev", AuthInfo: "kind-dev", Namespace: "web"}
	kc.CurrentContext = "kind-dev"
	kc.Preferences.Colors = true
	must(t, clientcmd.WriteToFile(*kc, path))
	data, err := os.ReadFile(path)
	must(t, err)
	return data
}

// MergeKubeconfig does what the AWS CLI's update-kubeconfig does (awscli/customizations/eks/
// update_kubeconfig.py and kubeconfig.py, KubeconfigAppender.insert_cluster_user_pair): cluster and
// user entries named after the cluster ARN, a context named after the alias or the ARN,
// current-context set, every other entry kept; and what it does not: a lock, an atomic write, a
// backup, no write when nothing changes. The result is read back with client-go's loader.
func TestMergeKubeconfigLikeUpdateKubeconfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	orig := otherKubeconfig(t, path)
	opts := eksauth.MergeOptions{Path: path}
	res, err := eksauth.MergeKubeconfig(prodCluster(t), opts)
	must(t, err)
	if !res.Added || !res.Changed || res.Context != prodARN || res.Backup != path+".bak" {
		t.Fatalf("result = %+v", res)
	}
	backup, err := os.ReadFile(res.Backup)
	must(t, err)
	if !bytes.Equal(backup, orig) {
		t.Fatal("the backup is not the previous file")
	}
	for _, p := range []string{path, res.Backup} {
		st, err := os.Stat(p)
		must(t, err)
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v, want 0600", p, st.Mode().Perm())
		}
	}
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file left behind: %v", err)
	}
	kc, err := clientcmd.LoadFromFile(path)
	must(t, err)
	if kc.CurrentContext != prodARN || kc.Contexts[prodARN].Cluster != prodARN || kc.Contexts[prodARN].AuthInfo != prodARN ||
		kc.Clusters[prodARN].Server != "https://prod.gr7.us-west-2.eks.amazonaws.com" || kc.AuthInfos[prodARN].Exec == nil {
		t.Fatalf("merged kubeconfig: %+v", kc)
	}
	if kc.Contexts["kind-dev"] == nil || kc.Contexts["kind-dev"].Namespace != "web" || kc.AuthInfos["kind-dev"].Token != "kind-token" || !kc.Preferences.Colors {
		t.Fatal("the other cluster's entries or the preferences were lost")
	}
	// What kubectl would use: client-go's loading rules on the file.
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{}).ClientConfig()
	must(t, err)
	if rc.Host != "https://prod.gr7.us-west-2.eks.amazonaws.com" || rc.ExecProvider == nil || strings.Join(rc.ExecProvider.Args, " ") != "token --cluster-name prod --region us-west-2" {
		t.Fatalf("rest.Config = %+v", rc)
	}

	// A re-run writes nothing (not even the backup).
	before, _ := os.ReadFile(path)
	stBefore, _ := os.Stat(path)
	time.Sleep(10 * time.Millisecond)
	res, err = eksauth.MergeKubeconfig(prodCluster(t), opts)
	must(t, err)
	after, _ := os.ReadFile(path)
	stAfter, _ := os.Stat(path)
	if res.Changed || !bytes.Equal(before, after) || !stAfter.ModTime().Equal(stBefore.ModTime()) {
		t.Fatalf("re-run = %+v, file rewritten", res)
	}
	if b, _ := os.ReadFile(path + ".bak"); !bytes.Equal(b, orig) {
		t.Fatal("the re-run replaced the backup")
	}

	// Switching back to kind and merging again only sets current-context.
	kc.CurrentContext = "kind-dev"
	must(t, clientcmd.WriteToFile(*kc, path))
	res, err = eksauth.MergeKubeconfig(prodCluster(t), opts)
	must(t, err)
	if res.Added || !res.Changed {
		t.Fatalf("result = %+v, want an update", res)
	}

	// --alias names the context; cluster and user keep the ARN.
	res, err = eksauth.MergeKubeconfig(prodCluster(t), eksauth.MergeOptions{Path: path, Alias: "prod"})
	must(t, err)
	kc, err = clientcmd.LoadFromFile(path)
	must(t, err)
	if !res.Added || kc.CurrentContext != "prod" || kc.Contexts["prod"].Cluster != prodARN || kc.Contexts["prod"].AuthInfo != prodARN || kc.Contexts[prodARN] == nil {
		t.Fatalf("alias: %+v", kc.Contexts)
	}
}

// The file is chosen as the AWS CLI's KubeconfigSelector chooses it.
func TestKubeconfigPathFollowsTheAWSCLI(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	otherKubeconfig(t, first)
	kc := clientcmdapi.NewConfig()
	kc.Clusters[prodARN] = &clientcmdapi.Cluster{Server: "https://old"}
	must(t, clientcmd.WriteToFile(*kc, second))
	env := map[string]string{"HOME": dir}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct{ kubeconfig, want string }{
		{"", filepath.Join(dir, ".kube", "config")},
		{first + string(os.PathListSeparator) + second, second},
		{string(os.PathListSeparator) + first, first},
		{filepath.Join(dir, "missing") + string(os.PathListSeparator) + first, filepath.Join(dir, "missing")},
	} {
		env["KUBECONFIG"] = tc.kubeconfig
		if got, err := eksauth.KubeconfigPath(getenv, prodARN); err != nil || got != tc.want {
			t.Errorf("KUBECONFIG=%q: %q, %v; want %q", tc.kubeconfig, got, err, tc.want)
		}
	}
	env["KUBECONFIG"] = ""
	res, err := eksauth.MergeKubeconfig(prodCluster(t), eksauth.MergeOptions{Getenv: getenv})
	must(t, err)
	if res.Path != filepath.Join(dir, ".kube", "config") || res.Backup != "" {
		t.Fatalf("result = %+v", res)
	}
}

// The lock is client-go's: while <file>.lock exists kubectl's clientcmd.ModifyConfig refuses to
// write, and so does MergeKubeconfig (after LockTimeout), leaving the file as it was. A file
// client-go cannot read is never overwritten.
func TestMergeKubeconfigLockAndCorruptFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	orig := otherKubeconfig(t, path)
	must(t, os.WriteFile(path+".lock", nil, 0o600))
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
	start, err := rules.GetStartingConfig()
	must(t, err)
	if err := clientcmd.ModifyConfig(rules, *start, false); err == nil {
		t.Fatal("client-go wrote while the lock file existed; the lock protocol is not the one assumed")
	}
	_, err = eksauth.MergeKubeconfig(prodCluster(t), eksauth.MergeOptions{Path: path, LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, eksauth.ErrKubeconfigLocked) {
		t.Fatalf("err = %v, want ErrKubeconfigLocked", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, orig) {
		t.Fatal("the locked file was changed")
	}
	must(t, os.Remove(path+".lock"))

	must(t, os.WriteFile(path, []byte("clusters: {not: [a list\n"), 0o600))
	if _, err := eksauth.MergeKubeconfig(prodCluster(t), eksauth.MergeOptions{Path: path}); err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "clusters: {not: [a list\n" {
		t.Fatal("the unreadable file was overwritten")
	}
	if _, err := os.Stat(path + ".bak"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a backup was written for a refused merge")
	}
}
