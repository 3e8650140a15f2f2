package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"

	"github.com/ekslink/ekslink/eksauth"
	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/envtest/awstest"
	"github.com/ekslink/ekslink/iamarn"
)

const (
	region   = "eu-west-1"
	callerID = "arn:aws:sts::111122223333:assumed-role/ci-deployer/pipeline-42"
	roleARN  = "arn:aws:iam::111122223333:role/ci-deployer"
)

// authenticator is a TokenReview webhook that authenticates like EKS's aws-iam-authenticator
// (pkg/token/token.go, Verify): it checks the token's form (eksauth.ParseToken), sends the
// presigned GetCallerIdentity to STS with the x-k8s-aws-id header, and names the user by the
// canonical ARN of the caller. STS is the local endpoint, which verifies the SigV4 presignature
// with the AWS SDK's signer; the request keeps the token's host, so the signature is checked
// against it. test/interop/eksauth runs aws-iam-authenticator's own verifier the same way.
func authenticator(t *testing.T, sts *awstest.Server, cluster string) string {
	pool := x509.NewCertPool()
	pool.AddCert(sts.Certificate())
	addr := sts.Listener.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"},
	}}
	verify := func(tok string) (string, error) {
		p, err := eksauth.ParseToken(tok, eksauth.ValidateOptions{Partition: "aws"})
		if err != nil {
			return "", err
		}
		req, _ := http.NewRequest(http.MethodGet, p.URL.String(), nil)
		req.Header.Set("x-k8s-aws-id", cluster)
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return "", fmt.Errorf("STS answered %d: %s", resp.StatusCode, b)
		}
		var out struct {
			GetCallerIdentityResponse struct{ GetCallerIdentityResult struct{ Arn string } }
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return "", err
		}
		principal, err := iamarn.Parse(out.GetCallerIdentityResponse.GetCallerIdentityResult.Arn)
		if err != nil {
			return "", err
		}
		return principal.Canonical(), nil
	}
	wh := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var tr authenticationv1.TokenReview
		if err := json.NewDecoder(r.Body).Decode(&tr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tr.Status = authenticationv1.TokenReviewStatus{}
		if user, err := verify(tr.Spec.Token); err != nil {
			tr.Status.Error = err.Error()
		} else {
			tr.Status.Authenticated = true
			tr.Status.User = authenticationv1.UserInfo{Username: user, Groups: []string{"system:authenticated"}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(tr)
	}))
	t.Cleanup(wh.Close)
	return envtest.KubeconfigFile(t, wh.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: wh.Certificate().Raw}), clientcmdv1.AuthInfo{})
}

// The example's main path against a real kube-apiserver that authenticates EKS tokens through the
// webhook above, with EKS DescribeCluster and STS served locally and the AWS configuration taken
// from the environment, as in a pipeline.
func TestAPipelineListsPodsAndPrintsAKubeconfig(t *testing.T) {
	eks := awstest.New(t, awstest.Options{Service: "eks", Region: region, Protocol: awstest.RESTJSON})
	sts := awstest.New(t, awstest.Options{Service: "sts", Region: region, Protocol: awstest.Query, Credentials: []aws.Credentials{eks.Credentials()}})
	sts.HandleAction("GetCallerIdentity", func(w http.ResponseWriter, r *http.Request) {
		awstest.WriteJSON(w, "application/json", map[string]any{"GetCallerIdentityResponse": map[string]any{
			"GetCallerIdentityResult": map[string]any{"Account": "111122223333", "Arn": callerID, "UserId": "AROAEXAMPLEEXAMPLE:pipeline-42"},
			"ResponseMetadata":        map[string]any{"RequestId": "00000000-0000-0000-0000-000000000000"},
		}})
	})
	env := envtest.Start(t, &envtest.Environment{ExtraArgs: []string{
		"--authentication-token-webhook-config-file=" + authenticator(t, sts, "prod"),
		"--authentication-token-webhook-version=v1",
	}})
	eks.Handle("GET /clusters/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "prod" {
			awstest.WriteRESTJSONError(w, 404, "ResourceNotFoundException", "No cluster found for name: "+r.PathValue("name"))
			return
		}
		awstest.WriteJSON(w, "application/json", map[string]any{"cluster": map[string]any{
			"name": "prod", "arn": "arn:aws:eks:" + region + ":111122223333:cluster/prod", "status": "ACTIVE",
			"endpoint": env.URL, "certificateAuthority": map[string]any{"data": base64.StdEncoding.EncodeToString(env.CAPEM)},
			"accessConfig": map[string]any{"authenticationMode": "API"},
		}})
	})
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	env.CreateServiceAccount(t, ns, "default") // no controller manager creates it
	env.Grant(t, ns, "ci-read", envtest.UserSubject(roleARN), []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}}})
	if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:1"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	bundle := filepath.Join(t.TempDir(), "aws-ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: eks.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c := eks.Credentials()
	for k, v := range map[string]string{
		"AWS_REGION": region, "AWS_ACCESS_KEY_ID": c.AccessKeyID, "AWS_SECRET_ACCESS_KEY": c.SecretAccessKey,
		"AWS_SESSION_TOKEN": c.SessionToken, "AWS_CA_BUNDLE": bundle, "AWS_ENDPOINT_URL_EKS": eks.URL,
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
	} {
		t.Setenv(k, v)
	}

	var out bytes.Buffer
	if err := run(ctx, []string{"--cluster-name=prod", "--namespace=" + ns}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "web\tPending\n" {
		t.Errorf("listed %q, want the namespace's one pod", got)
	}
	// RBAC applies to the role's ARN: another namespace is forbidden.
	if err := run(ctx, []string{"--cluster-name=prod", "--namespace=kube-system"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("listing kube-system as the CI role: %v, want forbidden", err)
	}

	out.Reset()
	if err := run(ctx, []string{"--cluster-name=prod", "--print-kubeconfig"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.Load(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	cl := kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster]
	exec := kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo].Exec
	if cl.Server != env.URL || !bytes.Equal(cl.CertificateAuthorityData, env.CAPEM) || exec == nil || exec.Command != "ekslink" ||
		strings.Join(exec.Args, " ") != "token --cluster-name prod --region "+region {
		t.Errorf("kubeconfig: server %s, exec %+v", cl.Server, exec)
	}
}

func TestTheClusterNameIsRequired(t *testing.T) {
	err := run(context.Background(), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--cluster-name") {
		t.Fatalf("run without --cluster-name: %v", err)
	}
}
