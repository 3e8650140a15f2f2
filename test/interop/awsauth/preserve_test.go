package awsauth_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/aws-iam-authenticator/pkg/config"
	"sigs.k8s.io/aws-iam-authenticator/pkg/mapper/configmap"

	"github.com/ekslink/ekslink/eksauth/awsauth"
	"github.com/ekslink/ekslink/envtest"
)

// issue15Roles is the map of the report: an admin, the role to revoke, and a role written with a
// path (a problem that was already there, warned about on every edit).
const issue15Roles = `- rolearn: arn:aws:iam::111122223333:role/admin
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

// Removing role/old moves the path-role entry from mapRoles[2] to mapRoles[1]. Its problem is
// the same problem: revocation must go through, with the problem as a warning.
func TestRevocationIsNotBlockedByAnExistingProblemThatMoves(t *testing.T) {
	for _, force := range []bool{false, true} {
		t.Run(fmt.Sprint("force=", force), func(t *testing.T) {
			ed, env, ns := editorIn(t)
			seed(t, env, ns, map[string]string{"mapRoles": issue15Roles})
			res, err := ed.Remove(envtest.Context(t), "arn:aws:iam::111122223333:role/old", awsauth.EditOptions{Force: force})
			if err != nil {
				t.Fatalf("revocation refused: %v", err)
			}
			if !slices.ContainsFunc(res.Warnings, func(w string) bool {
				return strings.HasPrefix(w, "existing entry: mapRoles[1] arn:aws:iam::111122223333:role/team/path-role") && strings.Contains(w, `role path "/team/" stripped`)
			}) {
				t.Errorf("warnings %q lack the existing path problem", res.Warnings)
			}
			roles, _, _ := reference(t, current(t, env, ns).Data)
			want := []string{"arn:aws:iam::111122223333:role/admin|admin|system:masters", "arn:aws:iam::111122223333:role/team/path-role|path-role|viewers"}
			if !slices.Equal(roles, want) {
				t.Fatalf("the authenticator now reads %q, want %q", roles, want)
			}
		})
	}
	t.Run("a new problem still blocks", func(t *testing.T) {
		ed, env, ns := editorIn(t)
		before := seed(t, env, ns, map[string]string{"mapRoles": issue15Roles})
		_, err := ed.UpsertRole(envtest.Context(t), awsauth.RoleMapping{RoleARN: "arn:aws:iam::111122223333:role/new", Username: "new:{{SessionNam}}"}, awsauth.EditOptions{})
		if !errors.Is(err, awsauth.ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
		if current(t, env, ns).ResourceVersion != before.ResourceVersion {
			t.Fatal("written")
		}
	})
}

// userMap has what real aws-auth maps carry besides role mappings: a header comment, comments on
// entries, an sso entry whose accountID YAML 1.1 reads as an octal number, a userid that does not
// fit an int64, flow-style groups and uneven spacing.
const userMap = `# managed by platform team: do not edit by hand
- rolearn: arn:aws:iam::111122223333:role/admin   # break-glass
  username: admin:{{SessionName}}
  groups: [system:masters]

# SSO administrators
- sso: {permissionSetName: Admin, accountID: 012345670123}
  username: sso-admin:{{SessionName}}
  groups:
    - system:masters
- rolearn: arn:aws:iam::111122223333:role/legacy
  userid: 123456789012345678901
  username:   legacy
  groups:
  - viewers
# end of list
`

// itemsOf returns each entry's text (the lines from one "- " to the next, comments above an entry
// included), for byte-for-byte comparison.
func itemsOf(s string) []string {
	var out []string
	for _, part := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(part, "- ") || len(out) == 0 {
			out = append(out, part)
		} else {
			out[len(out)-1] += part
		}
	}
	return out
}

func TestEditsKeepUntouchedEntriesByteForByte(t *testing.T) {
	ed, env, ns := editorIn(t)
	seed(t, env, ns, map[string]string{"mapRoles": userMap, "mapAccounts": "- 012345670123\n- \"444455556666\"  # partner\n"})
	ctx := envtest.Context(t)
	_, refBefore, _, _ := configmap.ParseMap(map[string]string{"mapRoles": userMap})

	res, err := ed.UpsertRole(ctx, awsauth.RoleMapping{RoleARN: ciRole, Username: "ci", Groups: []string{"deployers"}}, awsauth.EditOptions{})
	if err != nil || !res.Changed {
		t.Fatalf("%+v %v", res, err)
	}
	got := current(t, env, ns).Data["mapRoles"]
	if want := strings.TrimSuffix(userMap, "# end of list\n") + "- rolearn: " + ciRole + "\n  username: ci\n  groups:\n  - deployers\n# end of list\n"; got != want {
		t.Fatalf("mapRoles after add-role:\n%s\nwant:\n%s", got, want)
	}

	// Updating the entry that carries userid keeps userid's text; every other entry stays as is.
	res, err = ed.UpsertRole(ctx, awsauth.RoleMapping{RoleARN: "arn:aws:iam::111122223333:role/legacy", Username: "legacy", Groups: []string{"viewers", "auditors"}}, awsauth.EditOptions{})
	if err != nil || !res.Changed {
		t.Fatalf("%+v %v", res, err)
	}
	got = current(t, env, ns).Data["mapRoles"]
	if !strings.Contains(got, "userid: 123456789012345678901\n") {
		t.Fatalf("userid rewritten:\n%s", got)
	}
	before, after := itemsOf(userMap), itemsOf(got)
	for i, it := range before {
		if i == 3 { // the legacy entry, changed on purpose
			continue
		}
		if !strings.Contains(got, it) {
			t.Errorf("entry %d changed; was:\n%s\nnow:\n%s", i, it, got)
		}
	}
	if len(after) != 5 {
		t.Fatalf("%d items:\n%s", len(after), got)
	}
	// The authenticator reads the same for every entry the edits did not target.
	_, refAfter, _, _ := configmap.ParseMap(map[string]string{"mapRoles": got})
	for _, r := range refBefore {
		if r.RoleARN == "arn:aws:iam::111122223333:role/legacy" {
			continue
		}
		if !slices.ContainsFunc(refAfter, func(x config.RoleMapping) bool { return fmt.Sprint(x) == fmt.Sprint(r) }) {
			t.Errorf("the authenticator no longer reads %+v", r)
		}
	}
	if accts := current(t, env, ns).Data["mapAccounts"]; accts != "- 012345670123\n- \"444455556666\"  # partner\n" {
		t.Errorf("mapAccounts rewritten: %q", accts)
	}
}

// A list the editor cannot cut into entries (here flow style) would be rewritten whole: the edit
// is refused with the diff, and nothing is written.
func TestAnEditThatWouldRewriteOtherEntriesIsRefusedWithTheDiff(t *testing.T) {
	ed, env, ns := editorIn(t)
	flow := `[{rolearn: "arn:aws:iam::111122223333:role/admin", username: admin, groups: [system:masters]}, {rolearn: "arn:aws:iam::111122223333:role/legacy", userid: 123456789012345678901, username: legacy}]`
	before := seed(t, env, ns, map[string]string{"mapRoles": flow})
	res, err := ed.UpsertRole(envtest.Context(t), awsauth.RoleMapping{RoleARN: ciRole, Username: "ci"}, awsauth.EditOptions{})
	if !errors.Is(err, awsauth.ErrRewrite) || !strings.Contains(err.Error(), "mapRoles[0] arn:aws:iam::111122223333:role/admin") {
		t.Fatalf("err = %v, want ErrRewrite naming the admin entry", err)
	}
	if res == nil || !strings.Contains(res.Diff, "- "+flow) || !strings.Contains(res.Diff, "+ - rolearn: "+ciRole) {
		t.Fatalf("the refusal does not show the diff: %+v", res)
	}
	if current(t, env, ns).ResourceVersion != before.ResourceVersion {
		t.Fatal("written")
	}

	// Allowed, the rewrite keeps what the authenticator reads and the other fields' text. (The
	// unquoted userid is a decoding error for the authenticator too; it reads the rest.)
	_, refBefore, _, _ := configmap.ParseMap(before.Data)
	res, err = ed.UpsertRole(envtest.Context(t), awsauth.RoleMapping{RoleARN: ciRole, Username: "ci"}, awsauth.EditOptions{AllowRewrite: true})
	if err != nil || !strings.Contains(strings.Join(res.Warnings, "\n"), "rewritten in a new layout (same meaning): mapRoles[1] arn:aws:iam::111122223333:role/legacy") {
		t.Fatalf("%+v %v", res, err)
	}
	got := current(t, env, ns).Data
	_, refAfter, _, _ := configmap.ParseMap(got)
	if len(refAfter) != 3 || fmt.Sprint(refAfter[:2]) != fmt.Sprint(refBefore) || refAfter[2].RoleARN != ciRole {
		t.Fatalf("the authenticator reads %+v, before %+v", refAfter, refBefore)
	}
	if !strings.Contains(got["mapRoles"], "userid: 123456789012345678901\n") {
		t.Fatalf("userid rewritten:\n%s", got["mapRoles"])
	}
}

// username: 12345 and groups: [yes] are YAML numbers and booleans. The authenticator's ParseMap
// decodes them with encoding/json into strings, which fails for those fields only: it keeps the
// entry with an empty username or group. The editor reads them the same way, reports the problem,
// and can still edit the rest of the map (the problems are not new, so they are warnings).
func TestNonStringValuesAreReadAsTheAuthenticatorReadsThem(t *testing.T) {
	data := map[string]string{
		"mapRoles":    "- rolearn: " + adminRole + "\n  username: admin\n  groups: [system:masters]\n- rolearn: " + nodeRole + "\n  username: 12345\n  groups: [yes, ops]\n",
		"mapUsers":    "- userarn: " + aliceUser + "\n  username: alice\n  groups: system:masters\n",
		"mapAccounts": "- 012345670123\n",
	}
	users, roles, accounts, refErr := configmap.ParseMap(data)
	if refErr == nil {
		t.Fatal("the authenticator reported no decoding error; the fixture no longer shows the case")
	}
	c := parse(t, data)
	for i, r := range roles {
		if c.Roles[i].RoleARN != r.RoleARN || c.Roles[i].Username != r.Username || !slices.Equal(c.Roles[i].Groups, r.Groups) {
			t.Errorf("role %d: editor reads %+v, the authenticator %+v", i, c.Roles[i], r)
		}
	}
	if len(users) != 1 || c.Users[0].Username != users[0].Username || !slices.Equal(c.Users[0].Groups, users[0].Groups) {
		t.Errorf("user: editor reads %+v, the authenticator %+v", c.Users, users)
	}
	if !slices.Equal(c.Accounts, accounts) || accounts[0] != "012345670123" {
		t.Errorf("accounts: editor reads %q, the authenticator %q", c.Accounts, accounts)
	}
	problems := strings.Join(c.Problems(), "\n")
	for _, want := range []string{"username 12345 is not a string", "groups[0] true is not a string", "groups is not a list"} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems lack %q:\n%s", want, problems)
		}
	}

	ed, env, ns := editorIn(t)
	seed(t, env, ns, data)
	res, err := ed.UpsertRole(envtest.Context(t), awsauth.RoleMapping{RoleARN: ciRole, Username: "ci"}, awsauth.EditOptions{})
	if err != nil {
		t.Fatalf("an unrelated edit was refused: %v", err)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "existing entry: mapRoles[1] "+nodeRole+": username 12345 is not a string") {
		t.Errorf("warnings: %q", res.Warnings)
	}
	if got := current(t, env, ns).Data; !strings.HasPrefix(got["mapRoles"], data["mapRoles"]) || got["mapUsers"] != data["mapUsers"] || got["mapAccounts"] != data["mapAccounts"] {
		t.Errorf("untouched text changed: %q", got)
	}
}

// An entry the authenticator drops (no rolearn, an unquoted sso account ID) does not block any
// edit: the authenticator keeps the other entries (configmap.ParseMap validates entry by entry),
// and so the editor keeps it as written, reports it, and never counts it as an admin.
func TestEntriesTheAuthenticatorDropsDoNotBlockRevocation(t *testing.T) {
	data := map[string]string{"mapRoles": "- username: orphan\n  groups: [system:masters]\n" +
		"- sso: {permissionSetName: Admin, accountID: 012345670123}\n  username: sso\n  groups: [system:masters]\n" + issue15Roles,
		"mapUsers": "- username: no-arn\n  groups: [system:masters]\n"}
	_, refRoles, _, refErr := configmap.ParseMap(data)
	if refErr == nil || len(refRoles) != 3 {
		t.Fatalf("the authenticator reads %+v (%v); the fixture no longer shows dropped entries", refRoles, refErr)
	}
	ed, env, ns := editorIn(t)
	seed(t, env, ns, data)
	ctx := envtest.Context(t)
	res, err := ed.Remove(ctx, "arn:aws:iam::111122223333:role/old", awsauth.EditOptions{})
	if err != nil {
		t.Fatalf("revocation refused: %v", err)
	}
	w := strings.Join(res.Warnings, "\n")
	for _, want := range []string{"mapRoles[0] (no rolearn): has neither rolearn nor sso: the authenticator ignores this entry", "mapRoles[1] (sso): sso.accountID 1.402433619e+09 is not a string", "mapUsers[0] (no userarn): has no userarn"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	got := current(t, env, ns).Data
	if !strings.HasPrefix(got["mapRoles"], "- username: orphan\n  groups: [system:masters]\n- sso: {permissionSetName: Admin, accountID: 012345670123}\n") || got["mapUsers"] != data["mapUsers"] {
		t.Fatalf("dropped entries were not kept as written: %q", got)
	}
	// Dropped entries grant nothing: the admin role is the last real system:masters mapping.
	if _, err := ed.Remove(ctx, adminRole, awsauth.EditOptions{}); !errors.Is(err, awsauth.ErrLastMasters) {
		t.Fatalf("removing the last real admin: %v, want ErrLastMasters", err)
	}
}

// The authenticator reads each list on its own (configmap.ParseMap): a YAML error in mapUsers
// drops mapUsers only. A role can still be revoked; the broken list is written back as it was,
// and only edits of that list are refused.
func TestAMalformedListBlocksOnlyEditsOfThatList(t *testing.T) {
	badUsers := "- userarn: " + aliceUser + "\n  groups: [viewers\n"
	data := map[string]string{"mapRoles": issue15Roles, "mapUsers": badUsers}
	if _, refRoles, _, err := configmap.ParseMap(data); err == nil || len(refRoles) != 3 {
		t.Fatalf("the authenticator reads %d roles (%v); the fixture no longer shows a per-list error", len(refRoles), err)
	}
	ed, env, ns := editorIn(t)
	before := seed(t, env, ns, data)
	ctx := envtest.Context(t)
	if _, err := ed.UpsertUser(ctx, awsauth.UserMapping{UserARN: aliceUser, Username: "alice"}, awsauth.EditOptions{}); !errors.Is(err, awsauth.ErrMalformed) {
		t.Fatalf("editing the malformed list: %v, want ErrMalformed", err)
	}
	if _, err := ed.Remove(ctx, aliceUser, awsauth.EditOptions{}); !errors.Is(err, awsauth.ErrNotFound) || !strings.Contains(err.Error(), "mapUsers could not be read") {
		t.Fatalf("removing from the malformed list: %v", err)
	}
	if current(t, env, ns).ResourceVersion != before.ResourceVersion {
		t.Fatal("written")
	}
	res, err := ed.Remove(ctx, "arn:aws:iam::111122223333:role/old", awsauth.EditOptions{})
	if err != nil {
		t.Fatalf("revocation refused: %v", err)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "existing problem: awsauth: aws-auth ConfigMap is malformed: mapUsers") {
		t.Errorf("warnings: %q", res.Warnings)
	}
	got := current(t, env, ns).Data
	if got["mapUsers"] != badUsers || strings.Contains(got["mapRoles"], "role/old") {
		t.Fatalf("after the revocation: %q", got)
	}
}
