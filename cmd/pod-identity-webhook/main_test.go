package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/webhook"
)

func TestMain(m *testing.M) { envtest.Main(m) }

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writeKubeconfig(t *testing.T, env *envtest.Environment, path string) {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: env.URL, CertificateAuthorityData: env.CAPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	cfg.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
}

func get(client *http.Client, url string) (int, string) {
	resp, err := client.Get(url)
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The binary runs out of cluster with the upstream's own flags (its deploy/deployment-base.yaml
// args plus the out-of-cluster ones from its README), is called by the real API server over TLS,
// mutates a pod, exports metrics, and drains on SIGTERM (the context's end here; main wires it).
func TestRunsOutOfClusterWithTheUpstreamFlags(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeKubeconfig(t, env, kubeconfig)
	cert := envtest.NewServingCert(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for f, data := range map[string][]byte{certFile: cert.CertPEM, keyFile: cert.KeyPEM} {
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	port, metricsPort := freePort(t), freePort(t)
	identities := filepath.Join(dir, "identities.json")
	if err := os.WriteFile(identities, []byte(`{"identities":[{"namespace":"`+ns+`","serviceAccount":"agent"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: webhook.ConfigMapName},
		Data: map[string]string{webhook.ConfigMapKey: `{"*/mapped":{"RoleARN":"arn:aws:iam::111122223333:role/mapped","Audience":"sts.amazonaws.com"}}`}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRootCommand()
	root.SetArgs([]string{
		"--in-cluster=false", "--kubeconfig=" + kubeconfig, "--tls-cert=" + certFile, "--tls-key=" + keyFile,
		"--port=" + strconv.Itoa(port), "--metrics-port=" + strconv.Itoa(metricsPort),
		"--namespace=" + ns, "--service-name=pod-identity-webhook",
		"--annotation-prefix=eks.amazonaws.com", "--token-audience=sts.amazonaws.com", "--logtostderr",
		"--aws-default-region=eu-west-1", "--sts-regional-endpoint=true", "--watch-config-map", "--tls-min-version=1.2",
		"--watch-container-credentials-config=" + identities,
	})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	metrics := "http://127.0.0.1:" + strconv.Itoa(metricsPort)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := get(http.DefaultClient, metrics+"/readyz"); code == 200 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the command exited before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cert.CAPEM)
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://127.0.0.1:" + strconv.Itoa(port)
	if code, body := get(tlsClient, base+"/healthz"); code != 200 {
		t.Errorf("TLS /healthz: %d %s", code, body)
	}

	_, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Name: "s3-echoer", Annotations: map[string]string{"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/s3-echoer"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	podOf := func(name, sa string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.PodSpec{
			ServiceAccountName: sa, Containers: []corev1.Container{{Name: "main", Image: "public.ecr.aws/amazonlinux/amazonlinux:latest"}},
		}}
	}
	pod := func(name string) *corev1.Pod { return podOf(name, "s3-echoer") }
	hasRole := func(p *corev1.Pod) bool {
		for _, e := range p.Spec.Containers[0].Env {
			if e.Name == webhook.EnvRoleARN {
				return true
			}
		}
		return false
	}
	env.RegisterPodWebhook(t, envtest.PodWebhook{Name: "pod-identity-webhook-" + ns, URL: base + webhook.MutatePath,
		CABundle: cert.CAPEM, Namespace: ns, Probe: pod("probe"), Mutated: hasRole})

	stored, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod("s3-tester"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range stored.Spec.Containers[0].Env {
		got = append(got, e.Name+"="+e.Value)
	}
	want := "AWS_STS_REGIONAL_ENDPOINTS=regional AWS_DEFAULT_REGION=eu-west-1 AWS_REGION=eu-west-1 " +
		"AWS_ROLE_ARN=arn:aws:iam::111122223333:role/s3-echoer AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
	if strings.Join(got, " ") != want {
		t.Errorf("stored pod's env:\n got %s\nwant %s", strings.Join(got, " "), want)
	}

	// --watch-config-map (in --namespace) and --watch-container-credentials-config
	for _, name := range []string{"mapped", "agent"} {
		if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mapped, err := env.Client.CoreV1().Pods(ns).Create(ctx, podOf("mapped", "mapped"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasRole(mapped) {
		t.Errorf("ConfigMap-mapped pod not mutated: %v", mapped.Spec.Containers[0].Env)
	}
	agent, err := env.Client.CoreV1().Pods(ns).Create(ctx, podOf("agent", "agent"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if agent.Labels[webhook.PodIdentityLabel] != "enabled" || agent.Spec.Containers[0].Env[len(agent.Spec.Containers[0].Env)-2].Value != webhook.DefaultContainerCredentialsFullURI {
		t.Errorf("container-credentials pod: labels %v env %v", agent.Labels, agent.Spec.Containers[0].Env)
	}

	// A pod whose service account does not exist (deleted between the API server's own check
	// and the webhook's): the API server refuses such pods itself, so the review is posted here.
	podJSON, _ := json.Marshal(podOf("orphan", "deleted"))
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},` +
		`"operation":"CREATE","namespace":"` + ns + `","object":` + string(podJSON) + `}}`
	resp, err := tlsClient.Post(base+webhook.MutatePath, "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// The upstream's series, with its names, types and labels (pkg/handler/middleware.go,
	// pkg/cache/cache.go), beside ekslink's own.
	code, body := get(http.DefaultClient, metrics+"/metrics")
	for _, want := range []string{
		`ekslink_webhook_mutations_total{mode="irsa",result="mutated"}`,
		"ekslink_webhook_admission_duration_seconds_bucket",
		"# TYPE pod_identity_webhook_pod_count counter",
		`pod_identity_webhook_pod_count{method="sts_web_identity"} 3`, // s3-tester, mapped, and the probe's first success
		`pod_identity_webhook_pod_count{method="container_credentials"} 1`,
		"# TYPE pod_identity_webhook_missing_sa_count counter",
		"\npod_identity_webhook_missing_sa_count 1\n",
		"# TYPE pod_identity_webhook_used gauge",
		"\npod_identity_webhook_used 1\n",
		"# TYPE http_request_count counter",
		`http_request_count{code="200",path="/mutate",verb="POST"}`,
		"# TYPE http_request_latencies histogram",
		`http_request_latencies_bucket{path="/mutate",verb="POST",le="125000"}`,
		"# TYPE http_request_duration_microseconds summary",
		`http_request_duration_microseconds_count{path="/mutate",verb="POST"}`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15s after SIGTERM")
	}
	if code, _ := get(http.DefaultClient, metrics+"/healthz"); code != -1 {
		t.Errorf("metrics port still serving after shutdown")
	}
}

func TestRefusesWhatItDoesNotDo(t *testing.T) {
	for _, args := range [][]string{
		{"--in-cluster=true"},
		{"--in-cluster=false", "--compose-role-arn"},
		{"--in-cluster=false", "--tls-min-version=1.4"},
		{"--in-cluster=false", "--tls-cipher-suites=NOPE"},
		{"--in-cluster=false", "--watch-pod-identity-associations=kube-system"},
	} {
		root := newRootCommand()
		root.SetArgs(args)
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), strings.SplitN(args[len(args)-1], "=", 2)[0]) {
			t.Errorf("%v: err = %v, want one naming the flag", args, err)
		}
	}
}

func TestVersion(t *testing.T) {
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"--version"})
	if err := root.Execute(); err != nil || !strings.HasPrefix(out.String(), "pod-identity-webhook ") {
		t.Errorf("--version: %q, %v", out.String(), err)
	}
}
