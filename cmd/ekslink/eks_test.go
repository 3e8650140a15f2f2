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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"

	"github.com/ekslink/ekslink/eksauth"
	"github.com/ekslink/ekslink/eksauth/awsauth"
	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/envtest/awstest"
)

// runEKS runs the CLI in-process and returns stdout.
func runEKS(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, errOut, err := runEKSErr(t, args...)
	if err != nil {
		t.Logf("stderr: %s", errOut)
	}
	return out, err
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

// useKubeconfig points KUBECONFIG at a private control plane and returns it.
func useKubeconfig(t *testing.T) *envtest.Environment {
	env := envtest.Start(t, &envtest.Environment{})
	t.Setenv("KUBECONFIG", env.KubeconfigFile(t, clientcmdv1.AuthInfo{ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData}))
	return env
}

func TestAWSAuthAndAccessCommands(t *testing.T) {
	isolateAWS(t, "us-west-2")
	env := useKubeconfig(t)
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
	cfg, err := awsauth.NewEditor(env.Client, awsauth.Options{}).Get(envtest.Context(t))
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
	cr, err := env.Client.RbacV1().ClusterRoles().Get(envtest.Context(t), "eks-connector-impersonation", metav1.GetOptions{})
	if err != nil || cr.Rules[0].ResourceNames[0] != viewer {
		t.Fatalf("%+v %v", cr, err)
	}
}

// runEKSErr runs the CLI in-process and returns stdout and stderr.
func runEKSErr(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// The issue 15 scenarios through the CLI against a real API server: revoking a role while a later
// entry has an existing problem (a role path), with and without --force; an add-role next to an
// sso entry with an unquoted account ID, a large userid and comments, which must all survive as
// written; and a flow-style list, which is refused with the diff unless --allow-rewrite is typed.
func TestAWSAuthCommandsRevokeAndKeepUntouchedEntries(t *testing.T) {
	isolateAWS(t, "us-west-2")
	env := useKubeconfig(t)
	ctx := envtest.Context(t)
	cms := env.Client.CoreV1().ConfigMaps("kube-system")
	set := func(roles string) {
		t.Helper()
		_ = cms.Delete(ctx, "aws-auth", metav1.DeleteOptions{})
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "aws-auth", Namespace: "kube-system"}, Data: map[string]string{"mapRoles": roles}}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	get := func() string {
		t.Helper()
		cm, err := cms.Get(ctx, "aws-auth", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm.Data["mapRoles"]
	}
	const roles = `- rolearn: arn:aws:iam::111122223333:role/admin
  username: admin
  groups:
    - system:masters
- rolearn: arn:aws:iam::111122223333:role/old
  username: old
  groups:
    - deployers
- rolearn: arn:aws:iam::111122223333:role/team/path-role
  username: path-role
  groups:
    - viewers
`
	for _, extra := range [][]string{nil, {"--force"}} {
		set(roles)
		out, stderr, err := runEKSErr(t, append([]string{"aws-auth", "remove", "arn:aws:iam::111122223333:role/old"}, extra...)...)
		if err != nil || !strings.Contains(out, "aws-auth: updated") {
			t.Fatalf("remove %v: %q %q %v", extra, out, stderr, err)
		}
		if !strings.Contains(stderr, `warning: existing entry: mapRoles[1] arn:aws:iam::111122223333:role/team/path-role: role path "/team/" stripped`) {
			t.Errorf("stderr lacks the existing problem as a warning: %q", stderr)
		}
		if got := get(); strings.Contains(got, "role/old") || !strings.Contains(got, "role/team/path-role") {
			t.Fatalf("after remove %v:\n%s", extra, got)
		}
	}

	const kept = `# managed by platform
- rolearn: arn:aws:iam::111122223333:role/admin  # break-glass
  username: admin
  groups: [system:masters]
- sso: {permissionSetName: Admin, accountID: 012345670123}
  username: sso-admin
- rolearn: arn:aws:iam::111122223333:role/legacy
  userid: 123456789012345678901
  username: legacy
`
	set(kept)
	out, stderr, err := runEKSErr(t, "aws-auth", "add-role", "arn:aws:iam::111122223333:role/ci", "--username", "ci", "--group", "deployers")
	if err != nil || !strings.Contains(out, "aws-auth: updated") {
		t.Fatalf("add-role: %q %q %v", out, stderr, err)
	}
	if got, want := get(), kept+"- rolearn: arn:aws:iam::111122223333:role/ci\n  username: ci\n  groups:\n  - deployers\n"; got != want {
		t.Fatalf("mapRoles after add-role:\n%s\nwant:\n%s", got, want)
	}

	const flow = `[{rolearn: "arn:aws:iam::111122223333:role/admin", username: admin, groups: [system:masters]}]`
	set(flow)
	out, stderr, err = runEKSErr(t, "aws-auth", "add-role", "arn:aws:iam::111122223333:role/ci", "--username", "ci")
	if err == nil || !strings.Contains(err.Error(), "rewrite") || out != "" || !strings.Contains(stderr, "- "+flow) || !strings.Contains(stderr, "+ - rolearn: arn:aws:iam::111122223333:role/admin") {
		t.Fatalf("flow-style list: stdout %q stderr %q err %v", out, stderr, err)
	}
	if get() != flow {
		t.Fatal("written")
	}
	t.Setenv("EKSLINK_ALLOW_REWRITE", "true") // must not count: --allow-rewrite has to be typed
	if _, _, err := runEKSErr(t, "aws-auth", "add-role", "arn:aws:iam::111122223333:role/ci", "--username", "ci"); err == nil {
		t.Fatal("EKSLINK_ALLOW_REWRITE lifted the refusal")
	}
	if out, stderr, err := runEKSErr(t, "aws-auth", "add-role", "arn:aws:iam::111122223333:role/ci", "--username", "ci", "--allow-rewrite"); err != nil || !strings.Contains(out, "updated") || !strings.Contains(stderr, "rewritten in a new layout") {
		t.Fatalf("--allow-rewrite: %q %q %v", out, stderr, err)
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
