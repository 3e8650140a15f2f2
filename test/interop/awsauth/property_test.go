package awsauth_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/aws-iam-authenticator/pkg/config"
	"sigs.k8s.io/aws-iam-authenticator/pkg/mapper/configmap"

	"github.com/ekslink/ekslink/eksauth/awsauth"
)

// propertyRoles mixes what real maps hold: comments, flow and block groups, indentation of
// nested lists, an sso entry, unknown fields with numbers that YAML 1.1 would rewrite, quoting.
const propertyRoles = `# header comment
- rolearn: arn:aws:iam::111122223333:role/admin   # break-glass
  username: admin
  groups: [system:masters]
- rolearn: arn:aws:iam::111122223333:role/eks-node-group-1
  username: system:node:{{EC2PrivateDNSName}}
  groups:
    - system:bootstrappers
    - system:nodes

# SSO
- sso:
    permissionSetName: Admin
    accountID: "111122223333"
  username: "sso:{{SessionName}}"
  groups:
  - ops
- rolearn: 'arn:aws:iam::111122223333:role/legacy'
  userid: 123456789012345678901
  username: legacy
  note: 0777
# footer
`

// TestRandomEditsChangeOnlyWhatTheyTarget applies random upserts and removals and checks, with the
// authenticator's own ParseMap, that every mapping the edit did not target reads exactly as
// before and that every untouched entry's text is still in the list. Each edit is what an Editor
// applies with Force (no guards): ParseData, an edit of a Clone, and Data of the edited copy
// against the parsed original.
func TestRandomEditsChangeOnlyWhatTheyTarget(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 3))
	arns := []string{"admin", "eks-node-group-1", "legacy", "ci", "team-a", "team-b"}
	indented := "  " + strings.ReplaceAll(strings.TrimSuffix(propertyRoles, "\n"), "\n", "\n  ") + "\n"
	fixtures := []string{propertyRoles, indented, strings.TrimSuffix(strings.TrimSuffix(propertyRoles, "# footer\n"), "\n")}
	for round := range 120 {
		fixture := fixtures[round%len(fixtures)]
		data := map[string]string{awsauth.KeyMapRoles: fixture}
		for step := range 6 {
			name := arns[r.IntN(len(arns))]
			arn := "arn:aws:iam::111122223333:role/" + name
			remove := r.IntN(3) == 0
			orig, err := awsauth.ParseData(data)
			if err != nil {
				t.Fatalf("round %d step %d: %v\n%s", round, step, err, data[awsauth.KeyMapRoles])
			}
			c := orig.Clone()
			if remove {
				_, err = c.Remove(arn)
			} else {
				_, _, err = c.UpsertRole(awsauth.RoleMapping{RoleARN: arn, Username: fmt.Sprintf("%s-%d", name, step), Groups: []string{"g" + fmt.Sprint(step)}})
			}
			if err != nil {
				t.Fatalf("round %d step %d (%s remove=%t): %v", round, step, arn, remove, err)
			}
			newData := c.Data(orig)
			if newData[awsauth.KeyMapRoles] == data[awsauth.KeyMapRoles] {
				continue
			}
			_, before, _, _ := configmap.ParseMap(data)
			_, after, _, _ := configmap.ParseMap(map[string]string{awsauth.KeyMapRoles: newData[awsauth.KeyMapRoles]})
			key := func(m config.RoleMapping) string {
				sso := ""
				if m.SSO != nil {
					sso = fmt.Sprintf("%+v", *m.SSO)
				}
				return fmt.Sprintf("%s|%s|%q|%s|%s", m.RoleARN, m.Username, m.Groups, m.UserId, sso)
			}
			for _, b := range before {
				if strings.EqualFold(b.RoleARN, arn) {
					continue
				}
				if !slices.ContainsFunc(after, func(a config.RoleMapping) bool { return key(a) == key(b) }) {
					t.Fatalf("round %d step %d: editing %s changed %+v\nbefore:\n%s\nafter:\n%s", round, step, arn, b, data[awsauth.KeyMapRoles], newData[awsauth.KeyMapRoles])
				}
			}
			for _, text := range []string{"# header comment\n", "# footer\n", "userid: 123456789012345678901\n", "note: 0777\n", "accountID: \"111122223333\"\n"} {
				if strings.Contains(data[awsauth.KeyMapRoles], text) && !strings.Contains(newData[awsauth.KeyMapRoles], text) && !strings.Contains(arn, "legacy") {
					t.Fatalf("round %d step %d: %q lost by an edit of %s:\n%s", round, step, text, arn, newData[awsauth.KeyMapRoles])
				}
			}
			data = map[string]string{awsauth.KeyMapRoles: newData[awsauth.KeyMapRoles]}
		}
	}
}
