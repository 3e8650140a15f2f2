package registration_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/registration"
)

var iamWrites = []string{"CreateServiceLinkedRole", "CreateRole", "UpdateAssumeRolePolicy", "PutRolePolicy", "TagRole"}

func iamFake(t *testing.T) (*awsfake.Set, *iam.Client) {
	t.Helper()
	set, err := awsfake.Start(awsfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	return set, iam.NewFromConfig(set.Config(), func(o *iam.Options) { o.BaseEndpoint = aws.String(set.IAM.URL) })
}

func writes(set *awsfake.Set) int {
	n := 0
	for _, op := range iamWrites {
		n += set.Calls(op)
	}
	return n
}

func ops(calls []registration.IAMCall) string {
	var s []string
	for _, c := range calls {
		s = append(s, c.Operation)
	}
	return strings.Join(s, ",")
}

// The set-up of seed 001 (aws iam create-service-linked-role, create-role, put-role-policy) in one
// call; the second run reads and writes nothing.
func TestEnsureConnectorIAMCreatesThenChangesNothing(t *testing.T) {
	set, client := iamFake(t)
	ctx := context.Background()
	res, err := registration.EnsureConnectorIAM(ctx, client, registration.IAMSpec{Tags: map[string]string{"team": "platform"}})
	if err != nil {
		t.Fatal(err)
	}
	if ops(res.Calls) != "CreateServiceLinkedRole,CreateRole,PutRolePolicy" || res.AgentRoleARN != "arn:aws:iam::111122223333:role/eks-connector-agent" {
		t.Fatalf("first run: %s %s", ops(res.Calls), res.AgentRoleARN)
	}
	role, ok := set.Role("eks-connector-agent")
	if !ok || role.TrustPolicy != registration.AgentTrustPolicy || role.Policies["eks-connector-agent-policy"] != registration.AgentPolicy || role.Tags["team"] != "platform" {
		t.Fatalf("role %+v", role)
	}
	if slr, ok := set.Role("AWSServiceRoleForAmazonEKSConnector"); !ok || slr.Path != "/aws-service-role/eks-connector.amazonaws.com/" {
		t.Fatalf("service-linked role %+v", slr)
	}
	before := writes(set)
	res, err = registration.EnsureConnectorIAM(ctx, client, registration.IAMSpec{Tags: map[string]string{"team": "platform"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Calls) != 0 || writes(set) != before || res.AgentRoleARN == "" {
		t.Fatalf("second run wrote: %s (%d writes at IAM)", ops(res.Calls), writes(set)-before)
	}
	for _, r := range set.IAM.Requests() {
		if r.AccessKeyID == "" {
			t.Fatal("unsigned IAM request")
		}
	}
}

// A role made by hand with the same meaning (other whitespace and order, a string for a one-element
// list) is left alone; a policy that lost an action is put again; a changed trust policy is updated;
// a missing tag is added. Only what differs is written.
func TestEnsureConnectorIAMWritesOnlyDrift(t *testing.T) {
	set, client := iamFake(t)
	ctx := context.Background()
	set.PutRole(awsfake.Role{Name: "AWSServiceRoleForAmazonEKSConnector", Path: "/aws-service-role/eks-connector.amazonaws.com/", ServiceLinked: true, TrustPolicy: "{}"})
	sameTrust := `{"Statement":{"Action":["sts:AssumeRole"],"Principal":{"Service":"ssm.amazonaws.com"},"Effect":"Allow","Sid":"SSMAccess"},"Version":"2012-10-17"}`
	samePolicy := `{"Version":"2012-10-17","Statement":[{"Sid":"ssmDataplaneOperations","Effect":"Allow","Action":["ssmmessages:OpenControlChannel","ssmmessages:OpenDataChannel","ssmmessages:CreateDataChannel"],"Resource":"*"},
	 {"Sid":"SsmControlChannel","Effect":"Allow","Action":"ssmmessages:CreateControlChannel","Resource":["arn:aws:eks:*:*:cluster/*"]}]}`
	set.PutRole(awsfake.Role{Name: "eks-connector-agent", TrustPolicy: sameTrust, Policies: map[string]string{"eks-connector-agent-policy": samePolicy}})
	res, err := registration.EnsureConnectorIAM(ctx, client, registration.IAMSpec{})
	if err != nil || len(res.Calls) != 0 || writes(set) != 0 {
		t.Fatalf("same meaning rewritten: %v %v %d", err, res, writes(set))
	}

	lost := strings.Replace(samePolicy, `"ssmmessages:OpenDataChannel",`, "", 1)
	set.PutRole(awsfake.Role{Name: "eks-connector-agent", TrustPolicy: strings.Replace(sameTrust, "ssm.amazonaws.com", "ec2.amazonaws.com", 1),
		Policies: map[string]string{"eks-connector-agent-policy": lost}, Tags: map[string]string{"team": "other", "keep": "me"}})
	res, err = registration.EnsureConnectorIAM(ctx, client, registration.IAMSpec{Tags: map[string]string{"team": "platform"}})
	if err != nil || ops(res.Calls) != "UpdateAssumeRolePolicy,TagRole,PutRolePolicy" {
		t.Fatalf("drift: %v %s", err, ops(res.Calls))
	}
	role, _ := set.Role("eks-connector-agent")
	if role.TrustPolicy != registration.AgentTrustPolicy || role.Policies["eks-connector-agent-policy"] != registration.AgentPolicy || role.Tags["team"] != "platform" || role.Tags["keep"] != "me" {
		t.Fatalf("role after repair %+v", role)
	}
}

// The dry run reads IAM and lists the writes with their exact documents, and writes nothing.
func TestEnsureConnectorIAMDryRun(t *testing.T) {
	set, client := iamFake(t)
	res, err := registration.EnsureConnectorIAM(context.Background(), client, registration.IAMSpec{DryRun: true, RoleName: "agent", Tags: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if ops(res.Calls) != "CreateServiceLinkedRole,CreateRole,PutRolePolicy" || writes(set) != 0 {
		t.Fatalf("dry run: %s, %d writes", ops(res.Calls), writes(set))
	}
	if p := res.Calls[1].Parameters; p["AssumeRolePolicyDocument"] != registration.AgentTrustPolicy || p["RoleName"] != "agent" || p["Tags.a"] != "b" {
		t.Fatalf("CreateRole parameters %v", p)
	}
	if p := res.Calls[2].Parameters; p["PolicyDocument"] != registration.AgentPolicy || p["PolicyName"] != "eks-connector-agent-policy" {
		t.Fatalf("PutRolePolicy parameters %v", p)
	}
}

// The service-linked role appearing between the read and the create (another pipeline, the
// console): IAM answers InvalidInput "... has been taken in this account", which is success.
func TestEnsureConnectorIAMAcceptsServiceLinkedRoleTaken(t *testing.T) {
	set, client := iamFake(t)
	set.PutRole(awsfake.Role{Name: "AWSServiceRoleForAmazonEKSConnector", Path: "/aws-service-role/eks-connector.amazonaws.com/", ServiceLinked: true, TrustPolicy: "{}"})
	set.Fail("GetRole", 1, 404, "NoSuchEntity", "The role with name AWSServiceRoleForAmazonEKSConnector cannot be found.")
	if _, err := registration.EnsureConnectorIAM(context.Background(), client, registration.IAMSpec{}); err != nil {
		t.Fatal(err)
	}
	if set.Calls("CreateServiceLinkedRole") != 1 {
		t.Fatal("CreateServiceLinkedRole not called")
	}
}

// Throttling is retried by the SDK; AccessDenied is final and named in the error.
func TestEnsureConnectorIAMErrors(t *testing.T) {
	set, client := iamFake(t)
	set.Fail("GetRole", 1, 400, "Throttling", "Rate exceeded")
	if _, err := registration.EnsureConnectorIAM(context.Background(), client, registration.IAMSpec{}); err != nil {
		t.Fatalf("throttled once: %v", err)
	}
	set, client = iamFake(t)
	set.Fail("CreateRole", 1, 403, "AccessDenied", "User: arn:aws:iam::111122223333:user/ci is not authorized to perform: iam:CreateRole")
	_, err := registration.EnsureConnectorIAM(context.Background(), client, registration.IAMSpec{})
	if err == nil || !strings.Contains(err.Error(), "CreateRole") || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("access denied: %v", err)
	}
	if _, err := registration.EnsureConnectorIAM(context.Background(), client, registration.IAMSpec{Policy: "not json"}); err == nil || !strings.Contains(err.Error(), "policy") {
		t.Fatalf("bad policy: %v", err)
	}
}

// GetRole answers documents URL-encoded (IAM API reference, Role.AssumeRolePolicyDocument): the
// fake does so, and the comparison decodes them.
func TestFakeIAMReturnsURLEncodedDocuments(t *testing.T) {
	set, client := iamFake(t)
	set.PutRole(awsfake.Role{Name: "r", TrustPolicy: `{"a": "b c"}`})
	out, err := client.GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String("r")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.Role.AssumeRolePolicyDocument); got != url.QueryEscape(`{"a": "b c"}`) {
		t.Fatalf("document %q", got)
	}
}
