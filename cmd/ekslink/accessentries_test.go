package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/ekslink/ekslink/eksauth"
	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/envtest/awstest"
)

// useAWSFake starts the local AWS endpoints with one EKS cluster and points the SDK at them.
// useEKSClusterFake starts the local AWS endpoints with EKS cluster "prod" in authentication mode
// mode; call it before useKubeconfig (useAWSFake isolates the AWS and kube configuration).
func useEKSClusterFake(t *testing.T, mode string) *awsfake.Set {
	t.Helper()
	fake := useAWSFake(t, awsfake.Options{})
	fake.AddCluster(awsfake.EKSCluster{Name: "prod", Endpoint: "https://127.0.0.1:6443", CAPEM: fake.CAPEM(), AuthenticationMode: mode})
	return fake
}

// The EKS User Guide's aws-auth example, migrated through the CLI: dry run by default (no write),
// --apply creates the entries, a re-run has nothing to migrate; then the entries are listed and
// one revoked twice.
func TestAccessMigrateAndEntriesCommands(t *testing.T) {
	isolateAWS(t, "us-west-2")
	fake := useEKSClusterFake(t, "API_AND_CONFIG_MAP")
	env := useKubeconfig(t)
	raw, err := os.ReadFile(filepath.Join("..", "..", "eksauth", "testdata", "aws-auth-eks-user-guide.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().ConfigMaps("kube-system").Create(envtest.Context(t), &cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubeconfig := os.Getenv("KUBECONFIG")
	out, err := runEKS(t, "access", "migrate", "--cluster-name", "prod", "--kubeconfig", kubeconfig)
	if err != nil || !strings.Contains(out, "+ access entry arn:aws:iam::111122223333:role/my-role type EC2_LINUX (from mapRoles)") || !strings.Contains(out, "dry run, nothing written") {
		t.Fatalf("dry run: %s %v", out, err)
	}
	if n := len(fake.AccessEntries("prod")); n != 0 {
		t.Fatalf("the dry run created %d entries", n)
	}
	if out, err := runEKS(t, "access", "migrate", "--cluster-name", "prod", "--kubeconfig", kubeconfig, "--apply"); err != nil || !strings.Contains(out, "access entries: created") {
		t.Fatalf("apply: %s %v", out, err)
	}
	if out, err := runEKS(t, "access", "migrate", "--cluster-name", "prod", "--kubeconfig", kubeconfig, "--apply"); err != nil || !strings.Contains(out, "nothing to migrate") {
		t.Fatalf("re-run: %s %v", out, err)
	}
	out, err = runEKS(t, "access", "entries", "list", "--cluster-name", "prod")
	if err != nil || !strings.Contains(out, "arn:aws:iam::111122223333:user/admin\tSTANDARD\tusername=admin\tgroups=\tpolicies=AmazonEKSClusterAdminPolicy\n") {
		t.Fatalf("list: %s %v", out, err)
	}
	if out, err := runEKS(t, "access", "entries", "revoke", "arn:aws:iam::111122223333:role/my-role", "--cluster-name", "prod"); err == nil || !strings.Contains(err.Error(), "node access entry") {
		t.Fatalf("revoking the node role without --force: %s %v", out, err)
	}
	out, err = runEKS(t, "access", "entries", "revoke", "arn:aws:iam::111122223333:user/admin", "--cluster-name", "prod")
	if err != nil || out != "disassociated arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy from arn:aws:iam::111122223333:user/admin\ndeleted the access entry of arn:aws:iam::111122223333:user/admin\n" {
		t.Fatalf("revoke: %q %v", out, err)
	}
	if out, err := runEKS(t, "access", "entries", "revoke", "arn:aws:iam::111122223333:user/admin", "--cluster-name", "prod"); err != nil || !strings.Contains(out, "nothing to revoke") {
		t.Fatalf("second revoke: %q %v", out, err)
	}
}

// access grant --access-entry creates the entry and association on the local EKS; a re-run makes
// no write; a CONFIG_MAP cluster is refused with eksauth.ErrAccessEntriesUnsupported.
func TestAccessGrantCreatesAccessEntries(t *testing.T) {
	isolateAWS(t, "us-west-2")
	fake := useEKSClusterFake(t, "API")
	viewer := "arn:aws:iam::111122223333:role/viewer"
	writes := func() (n int) {
		for _, r := range fake.EKS.Requests() {
			if r.Method != "GET" {
				n++
			}
		}
		return n
	}
	for i := range 2 {
		if _, err := runEKS(t, "access", "grant", "--arn", viewer, "--access-entry", "--cluster-name", "prod"); err != nil {
			t.Fatal(err)
		}
		if n := writes(); n != 2 {
			t.Fatalf("grant %d: %d writes, want 2 (CreateAccessEntry, AssociateAccessPolicy) in all", i+1, n)
		}
	}
	got := fake.AccessEntries("prod")
	if len(got) != 1 {
		t.Fatalf("entries = %+v", got)
	}
	if scope, ok := got[0].Policies["arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"]; !ok || scope != nil {
		t.Fatalf("entry = %+v, want AmazonEKSViewPolicy on the whole cluster", got[0])
	}
	fake.AddCluster(awsfake.EKSCluster{Name: "old", Endpoint: "https://127.0.0.1:6443", CAPEM: fake.CAPEM(), AuthenticationMode: "CONFIG_MAP"})
	if _, err := runEKS(t, "access", "grant", "--arn", viewer, "--access-entry", "--cluster-name", "old"); !errors.Is(err, eksauth.ErrAccessEntriesUnsupported) {
		t.Fatalf("CONFIG_MAP cluster: %v", err)
	}
}

// A CONFIG_MAP cluster: the plan is printed with what to do; --apply is refused.
func TestAccessMigrateOnAConfigMapCluster(t *testing.T) {
	isolateAWS(t, "us-west-2")
	useEKSClusterFake(t, "CONFIG_MAP")
	env := useKubeconfig(t)
	_, err := env.Client.CoreV1().ConfigMaps("kube-system").Create(envtest.Context(t), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "aws-auth", Namespace: "kube-system"},
		Data:       map[string]string{"mapRoles": "- rolearn: arn:aws:iam::111122223333:role/admin\n  username: admin\n  groups: [system:masters]\n"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := os.Getenv("KUBECONFIG")
	out, err := runEKS(t, "access", "migrate", "--cluster-name", "prod", "--kubeconfig", kubeconfig)
	if err != nil || !strings.Contains(out, "+   policy arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy (cluster)") || !strings.Contains(out, "authenticationMode=API_AND_CONFIG_MAP") {
		t.Fatalf("plan: %s %v", out, err)
	}
	if _, err := runEKS(t, "access", "migrate", "--cluster-name", "prod", "--kubeconfig", kubeconfig, "--apply"); err == nil || !strings.Contains(err.Error(), "CONFIG_MAP") {
		t.Fatalf("apply on CONFIG_MAP: %v", err)
	}
}

// kubeconfig --merge keeps the other contexts of $KUBECONFIG's file and takes the region from
// the profile when --region is absent, as the AWS CLI does; without any region the error says
// where to set one.
func TestKubeconfigMergeWithTheProfileRegion(t *testing.T) {
	isolateAWS(t, "us-west-2")
	useEKSClusterFake(t, "API")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	dir := t.TempDir()
	noErr(t, os.WriteFile(os.Getenv("AWS_CONFIG_FILE"), []byte("[profile dev]\nregion = us-west-2\n"), 0o600))
	// A named profile's own credentials win over the environment's in the SDK: give it the test ones.
	noErr(t, os.WriteFile(os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), []byte("[dev]\naws_access_key_id = "+awstest.AccessKeyID+
		"\naws_secret_access_key = "+awstest.SecretAccessKey+"\naws_session_token = "+awstest.SessionToken+"\n"), 0o600))
	path := filepath.Join(dir, "config")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kind"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	kc.AuthInfos["kind"] = &clientcmdapi.AuthInfo{Token: "t"}
	kc.Contexts["kind"] = &clientcmdapi.Context{Cluster: "kind", AuthInfo: "kind"}
	kc.CurrentContext = "kind"
	noErr(t, clientcmd.WriteToFile(*kc, path))
	t.Setenv("KUBECONFIG", path+string(os.PathListSeparator)+filepath.Join(dir, "other"))

	arn := "arn:aws:eks:us-west-2:111122223333:cluster/prod"
	out, err := runEKS(t, "kubeconfig", "--cluster-name", "prod", "--profile", "dev", "--merge", "--alias", "prod")
	if err != nil || out != "Added new context prod to "+path+"\n" {
		t.Fatalf("merge: %q %v", out, err)
	}
	got, err := clientcmd.LoadFromFile(path)
	noErr(t, err)
	ai := got.AuthInfos[arn]
	if got.CurrentContext != "prod" || got.Contexts["kind"] == nil || ai == nil || strings.Join(ai.Exec.Args, " ") != "token --cluster-name prod --region us-west-2" || ai.Exec.Env[0].Value != "dev" {
		t.Fatalf("merged: %+v %+v", got.Contexts, ai)
	}
	if out, err := runEKS(t, "kubeconfig", "--cluster-name", "prod", "--profile", "dev", "--merge", "--alias", "prod"); err != nil || !strings.Contains(out, "is up to date") {
		t.Fatalf("re-run: %q %v", out, err)
	}
	_, err = runEKS(t, "kubeconfig", "--cluster-name", "prod", "--merge")
	if err == nil || !strings.Contains(err.Error(), "no AWS region: pass --region") {
		t.Fatalf("without a region: %v", err)
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
