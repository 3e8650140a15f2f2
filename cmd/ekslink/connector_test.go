package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/registration"
)

// useAWSFake starts the local AWS endpoints (EKS, SSM, IAM, ...) and points the SDK of the command
// under test at them through the variables the AWS SDK reads (AWS_ENDPOINT_URL_<SERVICE>,
// AWS_CA_BUNDLE, static credentials).
func useAWSFake(t *testing.T) *awsfake.Set {
	t.Helper()
	isolateAWS(t, "us-west-2")
	set, err := awsfake.Start(awsfake.Options{})
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
	set := useAWSFake(t)
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
