package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ekslink/ekslink/eksauth"
	"github.com/ekslink/ekslink/eksauth/awsauth"
	"github.com/ekslink/ekslink/internal/awstest"
	"github.com/ekslink/ekslink/internal/testenv"
)

// runEKS runs the CLI in-process and returns stdout.
func runEKS(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	if err != nil {
		t.Logf("stderr: %s", errOut.String())
	}
	return out.String(), err
}

// isolateAWS points the AWS SDK at test credentials only (no ~/.aws, no IMDS).
func isolateAWS(t *testing.T, region string) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", awstest.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", awstest.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", awstest.SessionToken)
	t.Setenv("AWS_REGION", region)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("KUBECONFIG", "")
}

func TestTokenCommandPrintsAnExecCredential(t *testing.T) {
	isolateAWS(t, "eu-west-1")
	for _, tc := range []struct{ name, info, want string }{
		{"v1 requested", `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}`, eksauth.ExecCredentialV1},
		{"no exec info", "", eksauth.ExecCredentialV1beta1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(eksauth.ExecInfoEnv, tc.info)
			t.Setenv("EKSLINK_CLUSTER_NAME", "prod") // env fallback of --cluster-name
			out, err := runEKS(t, "token", "--fips")
			if err != nil {
				t.Fatal(err)
			}
			var ec struct {
				APIVersion string `json:"apiVersion"`
				Status     struct {
					Token               string    `json:"token"`
					ExpirationTimestamp time.Time `json:"expirationTimestamp"`
				} `json:"status"`
			}
			if err := json.Unmarshal([]byte(out), &ec); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			p, err := eksauth.ParseToken(ec.Status.Token, eksauth.ValidateOptions{Partition: "aws"})
			if err != nil || ec.APIVersion != tc.want || p.Host != "sts-fips.eu-west-1.amazonaws.com" || !p.SessionToken {
				t.Fatalf("apiVersion %s, parsed %+v, %v", ec.APIVersion, p, err)
			}
		})
	}
	t.Run("no region is an error, not us-east-1", func(t *testing.T) {
		t.Setenv("AWS_REGION", "")
		t.Setenv("AWS_DEFAULT_REGION", "")
		if _, err := runEKS(t, "token", "--cluster-name", "prod"); err == nil || !strings.Contains(err.Error(), "region") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestKubeconfigCommandUsesDescribeCluster(t *testing.T) {
	isolateAWS(t, "us-west-2")
	s := awstest.New(t, awstest.Options{Service: "eks", Region: "us-west-2", Protocol: awstest.RESTJSON})
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	s.Handle("GET /clusters/{name}", func(w http.ResponseWriter, r *http.Request) {
		awstest.WriteJSON(w, "application/json", map[string]any{"cluster": map[string]any{
			"name": r.PathValue("name"), "arn": "arn:aws:eks:us-west-2:111122223333:cluster/" + r.PathValue("name"), "status": "ACTIVE",
			"endpoint": "https://example.gr7.us-west-2.eks.amazonaws.com", "certificateAuthority": map[string]any{"data": base64.StdEncoding.EncodeToString(ca)},
			"accessConfig": map[string]any{"authenticationMode": "API"},
		}})
	})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL_EKS", s.URL)
	t.Setenv("AWS_CA_BUNDLE", caFile)
	path := filepath.Join(dir, "kubeconfig")
	if _, err := runEKS(t, "kubeconfig", "--cluster-name", "prod", "-o", path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st, err)
	}
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ai := kc.AuthInfos[kc.CurrentContext]
	if ai == nil || ai.Exec == nil || strings.Join(ai.Exec.Args, " ") != "token --cluster-name prod --region us-west-2" || ai.Exec.InteractiveMode != clientcmdapi.NeverExecInteractiveMode {
		t.Fatalf("kubeconfig:\n%+v", ai)
	}
	// Endpoint choices made for the kubeconfig reach the token command it runs.
	if _, err := runEKS(t, "kubeconfig", "--cluster-name", "prod", "-o", path, "--global-endpoint"); err != nil {
		t.Fatal(err)
	}
	if kc, err = clientcmd.LoadFromFile(path); err != nil {
		t.Fatal(err)
	}
	if ai = kc.AuthInfos[kc.CurrentContext]; ai == nil || ai.Exec == nil || strings.Join(ai.Exec.Args, " ") != "token --cluster-name prod --region us-west-2 --global-endpoint" {
		t.Fatalf("kubeconfig with endpoint flags:\n%+v", ai)
	}
}

func TestAWSAuthAndAccessCommands(t *testing.T) {
	isolateAWS(t, "us-west-2")
	env := testenv.Start(t, testenv.Options{})
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
	admin := "arn:aws:iam::111122223333:role/admin"
	ci := "arn:aws:iam::111122223333:role/ci"

	if out, err := runEKS(t, "aws-auth", "add-role", admin, "--username", "admin", "--group", "system:masters"); err != nil || !strings.Contains(out, "updated") {
		t.Fatalf("%s %v", out, err)
	}
	if out, err := runEKS(t, "aws-auth", "add-role", ci, "--username", "ci", "--group", "deployers", "--dry-run"); err != nil || !strings.Contains(out, "+ - rolearn: "+ci) {
		t.Fatalf("dry run: %s %v", out, err)
	}
	if out, err := runEKS(t, "aws-auth", "add-role", admin, "--username", "admin", "--group", "system:masters"); err != nil || !strings.Contains(out, "no change") {
		t.Fatalf("second add: %s %v", out, err)
	}
	if out, err := runEKS(t, "aws-auth", "remove", admin); err == nil || !strings.Contains(err.Error(), "system:masters") || out != "" {
		t.Fatalf("removing the last admin: stdout %q err %v", out, err)
	}
	// A leftover EKSLINK_FORCE must not lift the guard: --force has to be typed.
	t.Setenv("EKSLINK_FORCE", "true")
	if out, err := runEKS(t, "aws-auth", "remove", admin); err == nil || !strings.Contains(err.Error(), "system:masters") || out != "" {
		t.Fatalf("EKSLINK_FORCE lifted the guard: stdout %q err %v", out, err)
	}
	if out, err := runEKS(t, "aws-auth", "diff", admin, "--remove", "--force"); err != nil || !strings.Contains(out, "- - rolearn: "+admin) {
		t.Fatalf("diff: %s %v", out, err)
	}
	out, err := runEKS(t, "aws-auth", "get")
	if err != nil || !strings.Contains(out, admin) || strings.Contains(out, ci) {
		t.Fatalf("get: %s %v", out, err)
	}
	cfg, err := awsauth.NewEditor(env.Client, awsauth.Options{}).Get(testenv.Context(t))
	if err != nil || len(cfg.Roles) != 1 {
		t.Fatalf("%+v %v", cfg, err)
	}

	viewer := "arn:aws:iam::111122223333:user/Alice"
	if out, err := runEKS(t, "access", "grant", "--arn", viewer, "--namespace", "default"); err != nil || !strings.Contains(out, "kind: RoleBinding") || strings.Contains(out, "userextras") {
		t.Fatalf("render: %s %v", out, err)
	}
	if out, err := runEKS(t, "access", "grant", "--arn", viewer, "--user-extras"); err != nil || !strings.Contains(out, "userextras/arn") {
		t.Fatalf("render with --user-extras: %s %v", out, err)
	}
	if _, err := runEKS(t, "access", "grant", "--arn", viewer, "--namespace", "default", "--apply"); err != nil {
		t.Fatal(err)
	}
	cr, err := env.Client.RbacV1().ClusterRoles().Get(testenv.Context(t), "eks-connector-impersonation", metav1.GetOptions{})
	if err != nil || cr.Rules[0].ResourceNames[0] != viewer {
		t.Fatalf("%+v %v", cr, err)
	}
}

func TestAccessGrantCreatesAccessEntries(t *testing.T) {
	isolateAWS(t, "us-west-2")
	s := awstest.New(t, awstest.Options{Service: "eks", Region: "us-west-2", Protocol: awstest.RESTJSON})
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	mode := "API"
	s.Handle("GET /clusters/{name}", func(w http.ResponseWriter, r *http.Request) {
		awstest.WriteJSON(w, "application/json", map[string]any{"cluster": map[string]any{
			"name": r.PathValue("name"), "status": "ACTIVE", "endpoint": "https://example.gr7.us-west-2.eks.amazonaws.com",
			"certificateAuthority": map[string]any{"data": base64.StdEncoding.EncodeToString(ca)},
			"accessConfig":         map[string]any{"authenticationMode": mode},
		}})
	})
	var calls []string
	s.Handle("POST /clusters/{name}/access-entries", func(w http.ResponseWriter, r *http.Request) {
		calls = append(calls, "create")
		awstest.WriteJSON(w, "application/json", map[string]any{})
	})
	s.Handle("POST /clusters/{name}/access-entries/{principal}/access-policies", func(w http.ResponseWriter, r *http.Request) {
		calls = append(calls, "associate "+r.PathValue("principal"))
		awstest.WriteJSON(w, "application/json", map[string]any{})
	})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL_EKS", s.URL)
	t.Setenv("AWS_CA_BUNDLE", caFile)
	viewer := "arn:aws:iam::111122223333:role/viewer"
	if _, err := runEKS(t, "access", "grant", "--arn", viewer, "--access-entry", "--cluster-name", "prod"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(calls, ",") != "create,associate "+viewer {
		t.Fatalf("calls = %q", calls)
	}
	mode = "CONFIG_MAP"
	if _, err := runEKS(t, "access", "grant", "--arn", viewer, "--access-entry", "--cluster-name", "prod"); !errors.Is(err, eksauth.ErrAccessEntriesUnsupported) {
		t.Fatalf("CONFIG_MAP cluster: %v", err)
	}
}
