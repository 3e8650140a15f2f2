package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/podidentity/association"
)

// sharedKubeconfig points KUBECONFIG at the shared control plane.
func sharedKubeconfig(t *testing.T) *envtest.Environment {
	env := envtest.Shared(t)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["t"] = &clientcmdapi.Cluster{Server: env.URL, CertificateAuthorityData: env.CAPEM}
	kc.AuthInfos["t"] = &clientcmdapi.AuthInfo{ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData}
	kc.Contexts["t"] = &clientcmdapi.Context{Cluster: "t", AuthInfo: "t"}
	kc.CurrentContext = "t"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", path)
	return env
}

func TestPodIdentityAssociationCommands(t *testing.T) {
	env := sharedKubeconfig(t)
	ns := env.Namespace(t)
	t.Setenv("EKSLINK_POD_IDENTITY_CONFIGMAP_NAMESPACE", ns) // the environment fallback
	const role = "arn:aws:iam::111122223333:role/app"
	create := []string{"pod-identity", "association", "create", "--namespace", "team", "--service-account", "app", "--role-arn", role}

	out, err := runEKS(t, create...)
	if err != nil || !strings.Contains(out, "association team/app -> "+role+": created") {
		t.Fatalf("create: %q %v", out, err)
	}
	if out, err = runEKS(t, create...); err != nil || !strings.Contains(out, ": already exists") {
		t.Fatalf("repeated create: %q %v", out, err)
	}
	if _, err = runEKS(t, "pod-identity", "association", "create", "--namespace", "team", "--service-account", "app", "--role-arn", "arn:aws:iam::111122223333:role/other"); err == nil || !strings.Contains(err.Error(), "already has role "+role) {
		t.Fatalf("conflicting create: %v", err)
	}
	if _, err = runEKS(t, "pod-identity", "association", "create", "--namespace", "team", "--service-account", "app2", "--role-arn", "arn:aws:iam::111122223333:user/alice"); err == nil || !strings.Contains(err.Error(), "roleArn") {
		t.Fatalf("user ARN accepted: %v", err)
	}

	out, err = runEKS(t, "pod-identity", "association", "list", "-o", "json")
	var as []association.Association
	if err != nil || json.Unmarshal([]byte(out), &as) != nil || len(as) != 1 || as[0] != (association.Association{Namespace: "team", ServiceAccount: "app", RoleARN: role}) {
		t.Fatalf("list: %q %v", out, err)
	}
	if out, err = runEKS(t, "pod-identity", "association", "list"); err != nil || !strings.Contains(out, "team       app              "+role) {
		t.Fatalf("list table: %q %v", out, err)
	}
	// The ConfigMap is where the agents read it.
	ix, _, err := association.NewStore(env.Client, association.Options{Namespace: ns}).List(envtest.Context(t))
	if err != nil || len(ix) != 1 {
		t.Fatalf("ConfigMap: %v %v", ix, err)
	}

	del := []string{"pod-identity", "association", "delete", "--namespace", "team", "--service-account", "app"}
	if out, err = runEKS(t, del...); err != nil || !strings.Contains(out, "team/app: deleted") {
		t.Fatalf("delete: %q %v", out, err)
	}
	if out, err = runEKS(t, del...); err != nil || !strings.Contains(out, "not found") {
		t.Fatalf("repeated delete: %q %v", out, err)
	}
	if out, err = runEKS(t, "pod-identity", "association", "list", "-o", "json"); err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty list: %q %v", out, err)
	}
}
