package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/oidc"
	"github.com/ekslink/ekslink/podidentity/association"
)

// The binary with --backend=web-identity, configured through its environment, serves a pod of
// an associated service account the role's credentials from STS web identity, and refuses a pod
// without an association with 404.
func TestServerCommandWebIdentityBackend(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	fake, roleARN := webIdentityAWS(t, env, ns, "app")
	env.CreateServiceAccount(t, ns, "app")
	env.CreateServiceAccount(t, ns, "none")
	if _, err := association.NewStore(env.Client, association.Options{Namespace: ns}).Create(ctx, association.Association{Namespace: ns, ServiceAccount: "app", RoleARN: roleARN}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["t"] = &clientcmdapi.Cluster{Server: env.URL, CertificateAuthorityData: env.CAPEM}
	kc.AuthInfos["t"] = &clientcmdapi.AuthInfo{ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData}
	kc.Contexts["t"] = &clientcmdapi.Context{Cluster: "t", AuthInfo: "t"}
	kc.CurrentContext = "t"
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	fakeEnv, err := fake.Env(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range fakeEnv {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	port := freePort(t)
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":                     filepath.Join(dir, "none"),
		"AWS_SHARED_CREDENTIALS_FILE":         filepath.Join(dir, "none"),
		"AWS_PROFILE":                         "",
		"EKS_CLUSTER_NAME":                    "onprem",
		"NODE_NAME":                           "node-1",
		"POD_IDENTITY_BACKEND":                "web-identity",
		"POD_IDENTITY_KUBECONFIG":             kubeconfig,
		"POD_IDENTITY_ASSOCIATIONS_CONFIGMAP": ns + "/" + association.DefaultName,
		"POD_IDENTITY_BIND_HOSTS":             "127.0.0.1",
		"POD_IDENTITY_PORT":                   strconv.Itoa(port),
		"POD_IDENTITY_PROBE_ADDR":             "",
		"POD_IDENTITY_METRICS_ADDR":           "",
		"POD_IDENTITY_BIND_RETRY_INTERVAL":    "0s",
	} {
		t.Setenv(k, v)
	}
	done, stop := runAgent(t, "server")
	defer stop()
	token := func(sa, pod string) string { return boundPodToken(t, env, ns, sa, pod) }
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/credentials", port)
	code, body := firstAnswer(t, port, token("app", "app-1"), done)
	var creds struct{ AccessKeyId, AccountId string }
	if code != 200 || json.Unmarshal([]byte(body), &creds) != nil || !strings.HasPrefix(creds.AccessKeyId, "ASIA") || creds.AccountId != fake.AccountID() {
		t.Fatalf("app pod: %d %s", code, body)
	}
	if fake.WebIdentityCalls() != 1 {
		t.Fatalf("STS web identity calls = %d", fake.WebIdentityCalls())
	}
	if code, body = httpGet(t, url, token("none", "none-1")); code != 404 || !strings.Contains(body, `"NoAssociation"`) {
		t.Fatalf("pod without association: %d %s", code, body)
	}
}

// webIdentityAWS is the AWS side of the web identity backend for service account ns/sa: a local
// STS and IAM (awsfake) that verify tokens against the test API server's published discovery
// document and JWKS, an IAM OIDC provider with both client ids, and a role whose trust policy
// (oidc.TrustPolicy) names the service account and the pod audience.
func webIdentityAWS(t *testing.T, env *envtest.Environment, ns, sa string) (*awsfake.Set, string) {
	t.Helper()
	ctx := envtest.Context(t)
	rc := env.Client.Discovery().RESTClient()
	disc, err := rc.Get().AbsPath(oidc.DiscoveryPath).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := rc.Get().AbsPath(oidc.KubeJWKSPath).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	issuer := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == oidc.DiscoveryPath {
			_, _ = w.Write(disc)
			return
		}
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(issuer.Close)
	fake, err := awsfake.Start(awsfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	fake.SetIssuerClient(awsfake.IssuerClient(issuer))
	provider, err := fake.CreateOIDCProvider(awsfake.OIDCProvider{URL: env.Issuer, ClientIDs: []string{"sts.amazonaws.com", "pods.eks.amazonaws.com"}})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := oidc.TrustPolicy(oidc.TrustPolicyOptions{ProviderARN: provider, Issuer: env.Issuer, Namespace: ns, ServiceAccount: sa, Audience: "pods.eks.amazonaws.com"})
	if err != nil {
		t.Fatal(err)
	}
	roleARN, err := fake.CreateRole("agent-"+sa, policy)
	if err != nil {
		t.Fatal(err)
	}
	return fake, roleARN
}
