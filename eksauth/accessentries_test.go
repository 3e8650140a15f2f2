package eksauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/ekslink/ekslink/eksauth"
	"github.com/ekslink/ekslink/eksauth/awsauth"
	"github.com/ekslink/ekslink/envtest/awsfake"
)

// startAccessEKS starts the local AWS endpoints (SigV4 verified) with one EKS cluster in mode and
// returns them, an EKS client and the described cluster.
func startAccessEKS(t *testing.T, mode string) (*awsfake.Set, *eks.Client, *eksauth.Cluster) {
	t.Helper()
	fake, err := awsfake.Start(awsfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	fake.AddCluster(awsfake.EKSCluster{Name: "prod", Endpoint: "https://127.0.0.1:6443", CAPEM: fake.CAPEM(), AuthenticationMode: mode})
	cfg := fake.Config()
	client := eks.NewFromConfig(cfg, func(o *eks.Options) { o.BaseEndpoint = aws.String(fake.EKS.URL) })
	cluster, err := eksauth.DescribeCluster(context.Background(), cfg, "prod", eksauth.ClusterOptions{EKS: client})
	if err != nil {
		t.Fatal(err)
	}
	return fake, client, cluster
}

// writes counts the requests that change something (POST, PUT, DELETE).
func writes(fake *awsfake.Set) int {
	n := 0
	for _, r := range fake.EKS.Requests() {
		if r.Method != "GET" {
			n++
		}
	}
	return n
}

func TestAccessEntriesListAndRevoke(t *testing.T) {
	ctx := context.Background()
	fake, client, cluster := startAccessEKS(t, eksauth.AuthModeAPIAndConfigMap)
	ae, err := eksauth.NewAccessEntries(client, cluster)
	if err != nil {
		t.Fatal(err)
	}
	viewer := "arn:aws:iam::111122223333:role/viewer"
	must(t, ae.Grant(ctx, eksauth.AccessGrant{PrincipalARN: viewer, Policy: eksauth.AccessPolicyView, Namespaces: []string{"b", "a"}}))
	must(t, ae.Grant(ctx, eksauth.AccessGrant{PrincipalARN: viewer, Policy: eksauth.AccessPolicyEdit}))
	// More entries than one ListAccessEntries page (100) holds.
	for i := range 101 {
		must(t, ae.Grant(ctx, eksauth.AccessGrant{PrincipalARN: fmt.Sprintf("arn:aws:iam::111122223333:user/u%03d", i), Groups: []string{"readers"}}))
	}
	// A throttled list is retried by the SDK.
	fake.Fail("ListAccessEntries", 1, http.StatusTooManyRequests, "ThrottlingException", "Rate exceeded")
	entries, err := ae.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 102 || entries[0].PrincipalARN != viewer {
		t.Fatalf("List returned %d entries, first %+v", len(entries), entries[0])
	}
	lists := 0
	for _, r := range fake.EKS.Requests() {
		if r.Method == "GET" && r.Path == "/clusters/prod/access-entries" && r.Query.Get("nextToken") == "" {
			lists++
		}
	}
	if lists != 2 {
		t.Fatalf("%d first-page ListAccessEntries calls, want 2 (throttled, then retried)", lists)
	}
	v := entries[0]
	wantPolicies := []eksauth.PolicyAssociation{
		{PolicyARN: "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"},
		{PolicyARN: "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy", Namespaces: []string{"a", "b"}},
	}
	if v.Type != "STANDARD" || v.Username != "arn:aws:sts::111122223333:assumed-role/viewer/{{SessionName}}" || fmt.Sprint(v.Policies) != fmt.Sprint(wantPolicies) {
		t.Fatalf("viewer = %+v", v)
	}

	// Only one policy.
	res, err := ae.Revoke(ctx, viewer, eksauth.AccessRevokeOptions{Policy: eksauth.AccessPolicyEdit})
	if err != nil || res.Deleted || fmt.Sprint(res.Disassociated) != "[arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy]" {
		t.Fatalf("Revoke --policy = %+v, %v", res, err)
	}
	// Access denied is reported as EKS's typed error, and nothing is deleted.
	fake.Fail("DeleteAccessEntry", 1, http.StatusForbidden, "AccessDeniedException", "User is not authorized to perform: eks:DeleteAccessEntry")
	_, err = ae.Revoke(ctx, viewer, eksauth.AccessRevokeOptions{})
	var denied *ekstypes.AccessDeniedException
	if !errors.As(err, &denied) || !strings.Contains(err.Error(), viewer) {
		t.Fatalf("err = %v, want AccessDeniedException naming the principal", err)
	}
	res, err = ae.Revoke(ctx, viewer, eksauth.AccessRevokeOptions{})
	if err != nil || !res.Deleted || len(res.Disassociated) != 0 {
		t.Fatalf("Revoke = %+v, %v", res, err)
	}
	before := writes(fake)
	if res, err := ae.Revoke(ctx, viewer, eksauth.AccessRevokeOptions{}); err != nil || res.Changed() {
		t.Fatalf("second Revoke = %+v, %v", res, err)
	}
	if writes(fake) != before {
		t.Fatal("the second Revoke wrote")
	}
	// An entry deleted by someone else between the calls: not found is what Revoke wants.
	u0 := "arn:aws:iam::111122223333:user/u000"
	fake.Fail("DeleteAccessEntry", 1, http.StatusNotFound, "ResourceNotFoundException", "The specified access entry resource is not found.")
	if res, err := ae.Revoke(ctx, u0, eksauth.AccessRevokeOptions{}); err != nil || res.Deleted {
		t.Fatalf("Revoke of a vanishing entry = %+v, %v", res, err)
	}
}

func TestAccessEntriesRevokeGuardsNodeEntries(t *testing.T) {
	ctx := context.Background()
	fake, client, cluster := startAccessEKS(t, eksauth.AuthModeAPI)
	node := "arn:aws:iam::111122223333:role/nodes"
	_, err := client.CreateAccessEntry(ctx, &eks.CreateAccessEntryInput{ClusterName: aws.String("prod"), PrincipalArn: aws.String(node), Type: aws.String("EC2_LINUX")})
	must(t, err)
	ae, err := eksauth.NewAccessEntries(client, cluster)
	must(t, err)
	if _, err := ae.Revoke(ctx, node, eksauth.AccessRevokeOptions{}); !errors.Is(err, eksauth.ErrNodeAccessEntry) {
		t.Fatalf("err = %v, want ErrNodeAccessEntry", err)
	}
	if res, err := ae.Revoke(ctx, node, eksauth.AccessRevokeOptions{Force: true}); err != nil || !res.Deleted || len(fake.AccessEntries("prod")) != 0 {
		t.Fatalf("forced Revoke = %+v, %v", res, err)
	}
}

// Grant creates the entry and associates the policy once; a second identical grant makes no write,
// a grant of another scope associates again, and an assumed-role session ARN is refused before any
// call.
func TestAccessEntriesGrant(t *testing.T) {
	ctx := context.Background()
	fake, client, cluster := startAccessEKS(t, eksauth.AuthModeAPI)
	if _, err := eksauth.NewAccessEntries(client, &eksauth.Cluster{Name: "prod", AuthenticationMode: eksauth.AuthModeConfigMap}); !errors.Is(err, eksauth.ErrAccessEntriesUnsupported) {
		t.Fatalf("CONFIG_MAP cluster: %v", err)
	}
	ae, err := eksauth.NewAccessEntries(client, cluster)
	must(t, err)
	role := "arn:aws:iam::111122223333:role/console-viewer"
	g := eksauth.AccessGrant{PrincipalARN: role, Groups: []string{"viewers"}, Policy: eksauth.AccessPolicyView, Namespaces: []string{"team-a"}}
	must(t, ae.Grant(ctx, g))
	if n := writes(fake); n != 2 {
		t.Fatalf("%d writes, want CreateAccessEntry and AssociateAccessPolicy", n)
	}
	must(t, ae.Grant(ctx, g))
	if n := writes(fake); n != 2 {
		t.Fatalf("the second identical grant wrote (%d writes)", n)
	}
	got := fake.AccessEntries("prod")
	if len(got) != 1 || fmt.Sprint(got[0].Groups) != "[viewers]" || fmt.Sprint(got[0].Policies) != "map[arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy:[team-a]]" {
		t.Fatalf("entries = %+v", got)
	}
	g.Namespaces = []string{"team-a", "team-b"}
	must(t, ae.Grant(ctx, g))
	if n := writes(fake); n != 3 {
		t.Fatalf("%d writes, want one more association for the wider scope", n)
	}
	if err := ae.Grant(ctx, eksauth.AccessGrant{PrincipalARN: "arn:aws:sts::111122223333:assumed-role/x/y"}); err == nil || writes(fake) != 3 {
		t.Error("an assumed-role session ARN was accepted")
	}
}

// loadAWSAuth parses testdata/aws-auth-eks-user-guide.yaml (the Amazon EKS User Guide's example)
// with extra mapRoles items appended.
func loadAWSAuth(t *testing.T, extraRoles string) *awsauth.Config {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "aws-auth-eks-user-guide.yaml"))
	must(t, err)
	var cm corev1.ConfigMap
	must(t, yaml.Unmarshal(raw, &cm))
	cm.Data[awsauth.KeyMapRoles] += extraRoles
	cfg, err := awsauth.ParseData(cm.Data)
	must(t, err)
	return cfg
}

// The migration follows "Migrating existing aws-auth ConfigMap entries to access entries" (Amazon
// EKS User Guide) on the guide's own aws-auth example: the node role becomes an EC2_LINUX entry
// (EKS sets its username and groups), the console roles and users STANDARD entries with their
// username and groups, system:masters an AmazonEKSClusterAdminPolicy association. Added to the
// example: a Fargate pod execution role (FARGATE_LINUX), a Windows node role (EC2_WINDOWS), a role
// in a system: group other than masters and mapAccounts, which cannot be migrated and are warnings.
// Applying creates exactly the plan on the local EKS (which refuses what EKS refuses: system:
// groups, usernames of node entries); a re-run finds every entry equal and writes nothing.
func TestMigrationFollowsTheEKSUserGuide(t *testing.T) {
	ctx := context.Background()
	fake, client, cluster := startAccessEKS(t, eksauth.AuthModeAPIAndConfigMap)
	cfg := loadAWSAuth(t, `- rolearn: arn:aws:iam::111122223333:role/fargate-pods
  username: system:node:{{SessionName}}
  groups: [system:bootstrappers, system:nodes, system:node-proxier]
- rolearn: arn:aws:iam::111122223333:role/windows-nodes
  username: system:node:{{EC2PrivateDNSName}}
  groups: [system:bootstrappers, system:nodes, eks:kube-proxy-windows]
- rolearn: arn:aws:iam::111122223333:role/monitoring
  username: monitoring
  groups: [system:monitoring]
`)
	cfg.Accounts = []string{"444455556666"}
	ae, err := eksauth.NewAccessEntries(client, cluster)
	must(t, err)

	plan, err := ae.Migrate(ctx, cfg, eksauth.MigrateOptions{})
	must(t, err)
	if writes(fake) != 0 {
		t.Fatal("the dry run wrote")
	}
	wantDiff := `+ access entry arn:aws:iam::111122223333:role/my-role type EC2_LINUX (from mapRoles)
+ access entry arn:aws:iam::111122223333:role/my-console-viewer-role type STANDARD username my-console-viewer-role groups eks-console-dashboard-full-access-group (from mapRoles)
+ access entry arn:aws:iam::111122223333:role/fargate-pods type FARGATE_LINUX (from mapRoles)
+ access entry arn:aws:iam::111122223333:role/windows-nodes type EC2_WINDOWS (from mapRoles)
+ access entry arn:aws:iam::111122223333:user/admin type STANDARD username admin (from mapUsers)
+   policy arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy (cluster)
+ access entry arn:aws:iam::444455556666:user/my-user type STANDARD username my-user groups eks-console-dashboard-restricted-access-group (from mapUsers)
! not migrated: mapRoles arn:aws:iam::111122223333:role/monitoring: group(s) system:monitoring cannot be set on an access entry (EKS refuses names starting with system:, eks:, aws:, amazon:, iam:); bind the permissions to another group or associate an access policy, then migrate it by hand
! not migrated: mapAccounts 444455556666: no access-entry equivalent (it maps every principal of the account to its ARN); create an entry for each principal that needs access
`
	if got := plan.Diff(); got != wantDiff {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, wantDiff)
	}

	if _, err := ae.Migrate(ctx, cfg, eksauth.MigrateOptions{Apply: true}); err != nil {
		t.Fatal(err)
	}
	got := fake.AccessEntries("prod")
	if len(got) != 6 {
		t.Fatalf("%d entries: %+v", len(got), got)
	}
	for _, e := range got {
		switch e.PrincipalARN {
		case "arn:aws:iam::111122223333:user/admin":
			if _, ok := e.Policies["arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"]; !ok || e.Username != "admin" || len(e.Groups) != 0 {
				t.Errorf("admin = %+v", e)
			}
		case "arn:aws:iam::111122223333:role/my-role":
			if e.Type != "EC2_LINUX" || e.Username != "system:node:{{EC2PrivateDNSName}}" {
				t.Errorf("node role = %+v", e)
			}
		}
	}
	before := writes(fake)
	again, err := ae.Migrate(ctx, cfg, eksauth.MigrateOptions{Apply: true})
	must(t, err)
	if again.Pending() || writes(fake) != before {
		t.Fatalf("re-run wrote or planned writes:\n%s", again.Diff())
	}
}

// An existing entry that differs is a conflict the migration leaves alone; an equal entry that
// lacks the admin policy only gets the association.
func TestMigrationLeavesConflictsAlone(t *testing.T) {
	ctx := context.Background()
	fake, client, cluster := startAccessEKS(t, eksauth.AuthModeAPI)
	ae, err := eksauth.NewAccessEntries(client, cluster)
	must(t, err)
	viewer := "arn:aws:iam::111122223333:role/my-console-viewer-role"
	must(t, ae.Grant(ctx, eksauth.AccessGrant{PrincipalARN: viewer, Username: "someone-else"}))
	must(t, ae.Grant(ctx, eksauth.AccessGrant{PrincipalARN: "arn:aws:iam::111122223333:user/admin", Username: "admin"}))
	plan, err := ae.Migrate(ctx, loadAWSAuth(t, ""), eksauth.MigrateOptions{Apply: true})
	must(t, err)
	diff := plan.Diff()
	if !strings.Contains(diff, "! access entry "+viewer+" type STANDARD username my-console-viewer-role groups eks-console-dashboard-full-access-group exists as "+viewer+" type STANDARD username someone-else") ||
		!strings.Contains(diff, "= access entry arn:aws:iam::111122223333:user/admin type STANDARD username admin\n+   policy arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy (cluster)") {
		t.Fatalf("plan:\n%s", diff)
	}
	for _, e := range fake.AccessEntries("prod") {
		if e.PrincipalARN == viewer && (e.Username != "someone-else" || len(e.Groups) != 0) {
			t.Fatalf("the conflicting entry was changed: %+v", e)
		}
	}
}

// A CONFIG_MAP cluster cannot hold access entries: the plan can still be computed without calls,
// and NewAccessEntries says why it cannot be applied.
func TestMigrationOnAConfigMapCluster(t *testing.T) {
	_, client, cluster := startAccessEKS(t, eksauth.AuthModeConfigMap)
	if _, err := eksauth.NewAccessEntries(client, cluster); !errors.Is(err, eksauth.ErrAccessEntriesUnsupported) {
		t.Fatalf("err = %v", err)
	}
	plan := eksauth.PlanMigration(loadAWSAuth(t, ""), nil, "aws")
	if len(plan.Steps) != 4 || !plan.Pending() {
		t.Fatalf("plan:\n%s", plan.Diff())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
