package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/manifest"
	"github.com/ekslink/ekslink/podidentity/association"
)

// The agent as manifest.RenderPodIdentityAgent deploys it with the web identity backend, on the
// real API server: the rendered objects apply server-side; the binary runs with the rendered
// server container's arguments and environment (NODE_NAME resolved as the kubelet would),
// authenticated as the rendered ServiceAccount (a TokenRequest token), so the rendered RBAC is all
// it has. It syncs the API server's keys, the node's pods and the associations, serves an
// associated pod's credentials and refuses a pod without association; everything beyond its
// needs (other ConfigMaps, secrets, tokens of other service accounts) is forbidden.
func TestRenderedWebIdentityAgentRunsWithItsOwnRBAC(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns, appNS, assocNS := env.Namespace(t), env.Namespace(t), env.Namespace(t)
	fake, roleARN := webIdentityAWS(t, env, appNS, "app")
	dir := t.TempDir()
	fakeEnv, err := fake.Env(dir)
	if err != nil {
		t.Fatal(err)
	}
	region := ""
	for _, kv := range fakeEnv {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
		if k == "AWS_REGION" {
			region = v
		}
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_PROFILE", "")

	port, probePort, metricsPort := freePort(t), freePort(t), freePort(t)
	name := "pia-" + ns // cluster-scoped objects: unique per test
	objs, err := manifest.RenderPodIdentityAgent(manifest.PodIdentityAgentOptions{
		Namespace: ns, Name: name, ClusterName: "onprem", Region: region,
		BindHosts: []string{"127.0.0.1"}, Port: int32(port),
		ProbeAddr: fmt.Sprintf("127.0.0.1:%d", probePort), MetricsAddr: fmt.Sprintf("127.0.0.1:%d", metricsPort),
		WebIdentity: &manifest.PodIdentityWebIdentity{Associations: assocNS + "/assoc"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var server corev1.Container
	for _, o := range objs {
		if ds, ok := o.(*appsv1.DaemonSet); ok {
			server = ds.Spec.Template.Spec.Containers[0]
			if ds.Spec.Template.Spec.ServiceAccountName != name || !*ds.Spec.Template.Spec.AutomountServiceAccountToken {
				t.Fatalf("the DaemonSet does not run as its ServiceAccount with the token mounted: %+v", ds.Spec.Template.Spec)
			}
		}
	}
	us, err := manifest.Unstructured(objs)
	if err != nil {
		t.Fatal(err)
	}
	if err := manifest.Apply(ctx, env.Config, us, manifest.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = env.Client.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	sa := envtest.ServiceAccountSubject(ns, name)
	env.WaitAllowed(t, sa, "", "watch", "", "pods", "")
	env.WaitAllowed(t, sa, assocNS, "watch", "", "configmaps", "assoc")

	store := association.NewStore(env.Client, association.Options{Namespace: assocNS, Name: "assoc"})
	if _, err := store.Create(ctx, association.Association{Namespace: appNS, ServiceAccount: "app", RoleARN: roleARN}); err != nil {
		t.Fatal(err)
	}
	env.CreateServiceAccount(t, appNS, "app")
	env.CreateServiceAccount(t, appNS, "none")

	token := env.Token(t, ns, name, nil, time.Hour)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["t"] = &clientcmdapi.Cluster{Server: env.URL, CertificateAuthorityData: env.CAPEM}
	kc.AuthInfos["t"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["t"] = &clientcmdapi.Context{Cluster: "t", AuthInfo: "t"}
	kc.CurrentContext = "t"
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	for _, e := range server.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
			t.Setenv(e.Name, "node-1")
		case e.ValueFrom == nil:
			t.Setenv(e.Name, e.Value)
		default:
			t.Fatalf("rendered env %s: not resolvable here", e.Name)
		}
	}
	done, stop := runAgent(t, append(server.Args, "--kubeconfig="+kubeconfig)...)
	defer stop()
	podToken := func(sa, pod string) string { return boundPodToken(t, env, appNS, sa, pod) }
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/credentials", port)
	code, body := firstAnswer(t, port, podToken("app", "app-1"), done)
	if code != 200 || !strings.Contains(body, `"AccessKeyId":"ASIA`) {
		t.Fatalf("associated pod: %d %s", code, body)
	}
	if code, body = httpGet(t, url, podToken("none", "none-1")); code != 404 || !strings.Contains(body, `"NoAssociation"`) {
		t.Fatalf("pod without association: %d %s", code, body)
	}

	// Minimal: with the same token, everything beyond its needs is forbidden.
	c := env.ClientForToken(t, token)
	forbidden := map[string]error{}
	_, forbidden["get another ConfigMap"] = c.CoreV1().ConfigMaps(assocNS).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	_, forbidden["list ConfigMaps"] = c.CoreV1().ConfigMaps(assocNS).List(ctx, metav1.ListOptions{})
	_, forbidden["update the associations"] = c.CoreV1().ConfigMaps(assocNS).Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "assoc"}}, metav1.UpdateOptions{})
	_, forbidden["list secrets"] = c.CoreV1().Secrets(appNS).List(ctx, metav1.ListOptions{})
	_, forbidden["request a service account token"] = c.CoreV1().ServiceAccounts(appNS).CreateToken(ctx, "app",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"pods.eks.amazonaws.com"}}}, metav1.CreateOptions{})
	forbidden["delete a pod"] = c.CoreV1().Pods(appNS).Delete(ctx, "app-1", metav1.DeleteOptions{})
	_, forbidden["list nodes"] = c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	for what, err := range forbidden {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v, want Forbidden (the rendered RBAC must be minimal)", what, err)
		}
	}
}
