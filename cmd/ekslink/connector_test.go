package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/manifest"
	"github.com/ekslink/ekslink/registration"
)

// useAWSFake starts the local AWS endpoints (EKS, SSM, IAM, ...) and points the SDK of the command
// under test at them through the variables the AWS SDK reads (AWS_ENDPOINT_URL_<SERVICE>,
// AWS_CA_BUNDLE, static credentials).
func useAWSFake(t *testing.T, opts awsfake.Options) *awsfake.Set {
	t.Helper()
	isolateAWS(t, "us-west-2")
	set, err := awsfake.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	env, err := set.Env(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return set
}

func iamWriteCalls(set *awsfake.Set) int {
	n := 0
	for _, op := range []string{"CreateServiceLinkedRole", "CreateRole", "UpdateAssumeRolePolicy", "PutRolePolicy", "TagRole"} {
		n += set.Calls(op)
	}
	return n
}

// Seed 001's IAM steps (create-service-linked-role, create-role, put-role-policy) through the CLI:
// the dry run prints the calls and documents and writes nothing, the first run creates, the second
// changes nothing and says so.
func TestConnectorIAMCommand(t *testing.T) {
	set := useAWSFake(t, awsfake.Options{})
	out, err := runEKS(t, "connector", "iam", "--dry-run", "--tag", "team=platform")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"dry run", "CreateServiceLinkedRole", "AWSServiceName: eks-connector.amazonaws.com", "CreateRole", "PutRolePolicy", "ssmmessages:CreateControlChannel", `"ssm.amazonaws.com"`, "Tags.team: platform"} {
		if !strings.Contains(out, want) {
			t.Fatalf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if iamWriteCalls(set) != 0 {
		t.Fatal("the dry run wrote to IAM")
	}
	t.Setenv("EKSLINK_ROLE_NAME", "eks-connector-agent") // the env fallback of --role-name
	if out, err = runEKS(t, "connector", "iam", "--tag", "team=platform"); err != nil || !strings.Contains(out, "agent role arn:aws:iam::111122223333:role/eks-connector-agent") {
		t.Fatalf("%s %v", out, err)
	}
	if n := iamWriteCalls(set); n != 3 {
		t.Fatalf("first run: %d writes, want 3", n)
	}
	out, err = runEKS(t, "connector", "iam", "--tag", "team=platform", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var res registration.IAMResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Calls) != 0 || res.AgentRoleARN == "" {
		t.Fatalf("second run: %s %v", out, err)
	}
	if n := iamWriteCalls(set); n != 3 {
		t.Fatalf("second run wrote: %d writes in all", n)
	}
	set.Fail("CreateRole", 1, 403, "AccessDenied", "not authorized to perform: iam:CreateRole")
	if _, err := runEKS(t, "connector", "iam", "--role-name", "other"); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("access denied: %v", err)
	}
}

// Seed 001's "aws eks register-cluster" and the sed over the manifest template, in one command:
// the activation goes to a 0600 file and into the cluster's activation Secret (applied to a real
// API server), never to stdout or stderr; a second run registers nothing; another role for the
// same name is refused.
func TestConnectorRegisterCommand(t *testing.T) {
	set := useAWSFake(t, awsfake.Options{})
	env := useKubeconfig(t)
	ctx := envtest.Context(t)
	role := "arn:aws:iam::111122223333:role/eks-connector-agent"
	if _, err := runEKS(t, "connector", "register", "--name", "edge", "--agent-role-arn", role); err == nil || set.Calls("RegisterCluster")+set.Calls("DescribeCluster") != 0 {
		t.Fatalf("no place for the activation: %v, %d EKS calls", err, set.Calls("RegisterCluster")+set.Calls("DescribeCluster"))
	}
	file := filepath.Join(t.TempDir(), "activation.json")
	ns := env.Namespace(t)
	t.Setenv("EKS_CLUSTER_NAME", "edge") // the env fallback of --name
	out, errOut, err := runEKSErr(t, "connector", "register", "--agent-role-arn", role, "--tag", "team=platform",
		"--activation-file", file, "--apply", "--namespace", ns, "--replicas", "1")
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, errOut)
	}
	act, err := registration.ReadActivationFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("activation file mode %v", fi.Mode())
	}
	if act.ActivationCode == "" || act.Region != "us-west-2" || act.ClusterName != "edge" || strings.Contains(out+errOut, act.ActivationCode) || strings.Contains(out+errOut, act.ActivationID) {
		t.Fatalf("activation %+v; output:\n%s%s", act, out, errOut)
	}
	sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, manifest.DefaultActivationSecretName, metav1.GetOptions{})
	if err != nil || string(sec.Data[manifest.ActivationCodeKey]) != act.ActivationCode {
		t.Fatalf("activation Secret: %v", err)
	}
	out, err = runEKS(t, "connector", "register", "--agent-role-arn", role, "--activation-file", file, "--apply", "--namespace", ns, "--replicas", "1")
	if err != nil || !strings.Contains(out, "no change") || set.Calls("RegisterCluster") != 1 {
		t.Fatalf("second run: %s %v, %d RegisterCluster calls", out, err, set.Calls("RegisterCluster"))
	}
	if again, _ := registration.ReadActivationFile(file); again.ActivationCode != act.ActivationCode {
		t.Fatal("the second run overwrote the activation file")
	}
	if sec2, _ := env.Client.CoreV1().Secrets(ns).Get(ctx, manifest.DefaultActivationSecretName, metav1.GetOptions{}); string(sec2.Data[manifest.ActivationCodeKey]) != act.ActivationCode {
		t.Fatal("the second run changed the activation Secret")
	}
	if _, err := runEKS(t, "connector", "register", "--agent-role-arn", "arn:aws:iam::111122223333:role/other", "--show-activation"); !errors.Is(err, registration.ErrClusterConflict) {
		t.Fatalf("another role: %v", err)
	}
	out, err = runEKS(t, "connector", "register", "--name", "edge2", "--agent-role-arn", role, "--show-activation")
	if err != nil || !strings.Contains(out, "activation code: ") {
		t.Fatalf("--show-activation: %s %v", out, err)
	}
	set.Fail("DescribeCluster", 1, 403, "AccessDeniedException", "User is not authorized to perform: eks:DescribeCluster")
	if _, err := runEKS(t, "connector", "register", "--name", "edge3", "--agent-role-arn", role, "--show-activation"); err == nil || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("access denied: %v", err)
	}
}

// --manifest-file writes the rendered connector with its activation Secret, mode 0600, for GitOps;
// the code is in the Secret and nowhere on the terminal.
func TestConnectorRegisterWritesTheManifest(t *testing.T) {
	useAWSFake(t, awsfake.Options{})
	dir := t.TempDir()
	path, file := filepath.Join(dir, "eks-connector.yaml"), filepath.Join(dir, "activation.json")
	out, errOut, err := runEKSErr(t, "connector", "register", "--name", "gitops", "--agent-role-arn", "arn:aws:iam::111122223333:role/eks-connector-agent",
		"--manifest-file", path, "--activation-file", file, "--image", "registry.example/team/eks-connector@sha256:"+strings.Repeat("a", 64))
	if err != nil {
		t.Fatalf("%v %s", err, errOut)
	}
	act, err := registration.ReadActivationFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("manifest mode: %v %v", fi, err)
	}
	data, _ := os.ReadFile(path)
	objs, err := manifest.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, u := range objs {
		if u.GetKind() == "Secret" && u.GetName() == manifest.DefaultActivationSecretName {
			var sec corev1.Secret
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &sec); err != nil {
				t.Fatal(err)
			}
			found = string(sec.Data[manifest.ActivationCodeKey]) == act.ActivationCode
		}
	}
	if !found || strings.Contains(out+errOut, act.ActivationCode) || !strings.Contains(string(data), "registry.example/team/eks-connector@sha256:") {
		t.Fatalf("activation Secret with the code found: %v; output %s%s", found, out, errOut)
	}
}
