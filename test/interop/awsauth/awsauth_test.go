package awsauth_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/aws-iam-authenticator/pkg/mapper/configmap"

	"github.com/ekslink/ekslink/eksauth/awsauth"
	"github.com/ekslink/ekslink/envtest"
)

func TestMain(m *testing.M) { envtest.Main(m) }

const (
	nodeRole  = "arn:aws:iam::111122223333:role/eks-node-group-1"
	adminRole = "arn:aws:iam::111122223333:role/admin"
	ciRole    = "arn:aws:iam::111122223333:role/ci"
	aliceUser = "arn:aws:iam::111122223333:user/alice"
)

// existing is a typical aws-auth: a node group, an admin with an unknown field, a user, an account.
var existing = map[string]string{
	"mapRoles": `- rolearn: arn:aws:iam::111122223333:role/eks-node-group-1
  username: system:node:{{EC2PrivateDNSName}}
  groups:
    - system:bootstrappers
    - system:nodes
- rolearn: arn:aws:iam::111122223333:role/admin
  username: admin:{{SessionName}}
  userid: AROAEXAMPLE
  groups:
    - system:masters
`,
	"mapUsers":    "- userarn: arn:aws:iam::111122223333:user/alice\n  username: alice\n  groups: [viewers]\n",
	"mapAccounts": "- \"444455556666\"\n",
}

// reference parses data with aws-iam-authenticator's own ParseMap
// (sigs.k8s.io/aws-iam-authenticator pkg/mapper/configmap/configmap.go: utilyaml.ToJSON, then
// encoding/json into config.RoleMapping/UserMapping; mapAccounts with gopkg.in/yaml.v2), which is
// what the cluster's authenticator reads from the ConfigMap. Lines are "arn|username|groups".
func reference(t *testing.T, data map[string]string) ([]string, []string, []string) {
	t.Helper()
	users, roles, accounts, err := configmap.ParseMap(data)
	if err != nil {
		t.Fatalf("the authenticator could not parse the ConfigMap: %v\n%q", err, data)
	}
	var r, u []string
	for _, x := range roles {
		r = append(r, fmt.Sprintf("%s|%s|%s", x.RoleARN, x.Username, strings.Join(x.Groups, ",")))
	}
	for _, x := range users {
		u = append(u, fmt.Sprintf("%s|%s|%s", x.UserARN, x.Username, strings.Join(x.Groups, ",")))
	}
	return r, u, accounts
}

// parse, editorIn, seed and current are copies of the helpers beside package awsauth's own
// tests (eksauth/awsauth/awsauth_test.go): test files of another module cannot be imported.

func parse(t *testing.T, data map[string]string) *awsauth.Config {
	t.Helper()
	c, err := awsauth.ParseData(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// editorIn returns an editor of an aws-auth ConfigMap in a fresh namespace of the shared control plane.
func editorIn(t *testing.T) (*awsauth.Editor, *envtest.Environment, string) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	return awsauth.NewEditor(env.Client, awsauth.Options{Namespace: ns}), env, ns
}

func seed(t *testing.T, env *envtest.Environment, ns string, data map[string]string) *corev1.ConfigMap {
	t.Helper()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: awsauth.Name, Namespace: ns, Annotations: map[string]string{"example.com/owner": "platform"}, Labels: map[string]string{"team": "platform"}},
		Data:       map[string]string{"other-key": "kept as is"},
	}
	for k, v := range data {
		cm.Data[k] = v
	}
	out, err := env.Client.CoreV1().ConfigMaps(ns).Create(envtest.Context(t), cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func current(t *testing.T, env *envtest.Environment, ns string) *corev1.ConfigMap {
	t.Helper()
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(envtest.Context(t), awsauth.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func TestUpsertRules(t *testing.T) {
	cases := []struct {
		name        string
		edit        func(c *awsauth.Config) (bool, []string, error)
		changed     bool
		err         error
		warn        string
		wantRoles   []string
		wantUsers   []string
		wantAccount []string
	}{
		{
			name: "a new role is appended",
			edit: func(c *awsauth.Config) (bool, []string, error) {
				return c.UpsertRole(awsauth.RoleMapping{RoleARN: ciRole, Username: "ci", Groups: []string{"deployers"}})
			},
			changed:   true,
			wantRoles: []string{nodeRole + "|system:node:{{EC2PrivateDNSName}}|system:bootstrappers,system:nodes", adminRole + "|admin:{{SessionName}}|system:masters", ciRole + "|ci|deployers"},
		},
		{
			name: "an identical upsert changes nothing",
			edit: func(c *awsauth.Config) (bool, []string, error) {
				return c.UpsertRole(awsauth.RoleMapping{RoleARN: adminRole, Username: "admin:{{SessionName}}", Groups: []string{"system:masters"}})
			},
		},
		{
			name: "matching is case-insensitive and updates in place",
			edit: func(c *awsauth.Config) (bool, []string, error) {
				return c.UpsertRole(awsauth.RoleMapping{RoleARN: "arn:aws:iam::111122223333:role/ADMIN", Username: "root-admin", Groups: []string{"system:masters"}})
			},
			changed:   true,
			wantRoles: []string{nodeRole + "|system:node:{{EC2PrivateDNSName}}|system:bootstrappers,system:nodes", "arn:aws:iam::111122223333:role/ADMIN|root-admin|system:masters"},
		},
		{
			name: "role paths are stripped with a warning",
			edit: func(c *awsauth.Config) (bool, []string, error) {
				return c.UpsertRole(awsauth.RoleMapping{RoleARN: "arn:aws:iam::111122223333:role/teams/ci", Username: "ci"})
			},
			changed: true, warn: "path",
			wantRoles: []string{nodeRole + "|system:node:{{EC2PrivateDNSName}}|system:bootstrappers,system:nodes", adminRole + "|admin:{{SessionName}}|system:masters", ciRole + "|ci|"},
		},
		{
			name: "an unknown username template is refused",
			edit: func(c *awsauth.Config) (bool, []string, error) {
				return c.UpsertRole(awsauth.RoleMapping{RoleARN: ciRole, Username: "ci:{{SessionNam}}"})
			},
			err: awsauth.ErrInvalid,
		},
		{
			name: "an empty username is refused",
			edit: func(c *awsauth.Config) (bool, []string, error) {
				return c.UpsertRole(awsauth.RoleMapping{RoleARN: ciRole, Groups: []string{"x"}})
			},
			err: awsauth.ErrInvalid,
		},
		{
			name: "an empty group is refused",
			edit: func(c *awsauth.Config) (bool, []string, error) {
				return c.UpsertRole(awsauth.RoleMapping{RoleARN: ciRole, Username: "ci", Groups: []string{""}})
			},
			err: awsauth.ErrInvalid,
		},
		{
			name: "an unknown partition is refused",
			edit: func(c *awsauth.Config) (bool, []string, error) {
				return c.UpsertRole(awsauth.RoleMapping{RoleARN: "arn:aws-moon:iam::111122223333:role/ci", Username: "ci"})
			},
			err: awsauth.ErrInvalid,
		},
		{
			name: "a user ARN is refused in mapRoles",
			edit: func(c *awsauth.Config) (bool, []string, error) {
				return c.UpsertRole(awsauth.RoleMapping{RoleARN: aliceUser, Username: "alice"})
			},
			err: awsauth.ErrInvalid,
		},
		{
			name: "users are updated case-insensitively",
			edit: func(c *awsauth.Config) (bool, []string, error) {
				return c.UpsertUser(awsauth.UserMapping{UserARN: "arn:aws:iam::111122223333:user/Alice", Username: "alice", Groups: []string{"editors"}})
			},
			changed:   true,
			wantUsers: []string{"arn:aws:iam::111122223333:user/Alice|alice|editors"},
		},
		{
			name: "aws-cn roles are accepted",
			edit: func(c *awsauth.Config) (bool, []string, error) {
				return c.UpsertRole(awsauth.RoleMapping{RoleARN: "arn:aws-cn:iam::111122223333:role/ci", Username: "ci"})
			},
			changed: true,
			wantRoles: []string{nodeRole + "|system:node:{{EC2PrivateDNSName}}|system:bootstrappers,system:nodes", adminRole + "|admin:{{SessionName}}|system:masters",
				"arn:aws-cn:iam::111122223333:role/ci|ci|"},
		},
		{
			name: "accounts are added once",
			edit: func(c *awsauth.Config) (bool, []string, error) {
				ok, err := c.AddAccount("777788889999")
				return ok, nil, err
			},
			changed:     true,
			wantAccount: []string{"444455556666", "777788889999"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			orig := parse(t, existing)
			c := orig.Clone()
			changed, warnings, err := tc.edit(c)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if changed != tc.changed {
				t.Fatalf("changed = %t", changed)
			}
			if tc.warn != "" && !strings.Contains(strings.Join(warnings, " "), tc.warn) {
				t.Errorf("warnings %q lack %q", warnings, tc.warn)
			}
			data := c.Data(orig)
			if !changed {
				for k, v := range existing {
					if data[k] != v {
						t.Fatalf("unchanged config re-rendered %s", k)
					}
				}
				return
			}
			roles, users, accounts := reference(t, data)
			_, origUsers, origAccounts := reference(t, existing)
			if tc.wantRoles != nil && !slices.Equal(roles, tc.wantRoles) {
				t.Errorf("roles = %q\nwant %q", roles, tc.wantRoles)
			}
			if tc.wantUsers == nil {
				tc.wantUsers = origUsers
			}
			if !slices.Equal(users, tc.wantUsers) {
				t.Errorf("users = %q, want %q", users, tc.wantUsers)
			}
			if tc.wantAccount == nil {
				tc.wantAccount = origAccounts
			}
			if !slices.Equal(accounts, tc.wantAccount) {
				t.Errorf("accounts = %q, want %q", accounts, tc.wantAccount)
			}
			if tc.wantRoles != nil && !strings.Contains(data["mapRoles"], "userid: AROAEXAMPLE") {
				t.Errorf("the unknown userid field was lost:\n%s", data["mapRoles"])
			}
		})
	}
}

func TestConcurrentEditorsAllSurvive(t *testing.T) {
	ed, env, ns := editorIn(t)
	seed(t, env, ns, existing)
	ctx := envtest.Context(t)
	const editors = 10
	var wg sync.WaitGroup
	errs := make([]error, editors)
	for i := range editors {
		wg.Go(func() {
			// A separate Editor per goroutine, as if ten pipelines ran at once.
			e := awsauth.NewEditor(env.Client, awsauth.Options{Namespace: ns})
			_, errs[i] = e.UpsertRole(ctx, awsauth.RoleMapping{RoleARN: fmt.Sprintf("arn:aws:iam::111122223333:role/team-%d", i), Username: fmt.Sprintf("team-%d", i), Groups: []string{"team"}}, awsauth.EditOptions{})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("editor %d: %v", i, err)
		}
	}
	cm := current(t, env, ns)
	roles, users, accounts := reference(t, cm.Data)
	if len(roles) != 2+editors {
		t.Fatalf("%d roles survived, want %d:\n%s", len(roles), 2+editors, cm.Data["mapRoles"])
	}
	for i := range editors {
		want := fmt.Sprintf("arn:aws:iam::111122223333:role/team-%d|team-%d|team", i, i)
		if !slices.Contains(roles, want) {
			t.Errorf("lost %s", want)
		}
	}
	if !slices.Contains(roles, adminRole+"|admin:{{SessionName}}|system:masters") || !slices.Contains(roles, nodeRole+"|system:node:{{EC2PrivateDNSName}}|system:bootstrappers,system:nodes") {
		t.Errorf("unrelated roles lost: %q", roles)
	}
	if cm.Data["mapUsers"] != existing["mapUsers"] || len(users) != 1 || len(accounts) != 1 {
		t.Errorf("untouched keys changed: %q", cm.Data)
	}
	if cm.Data["other-key"] != "kept as is" || cm.Annotations["example.com/owner"] != "platform" || cm.Labels["team"] != "platform" {
		t.Errorf("other data, labels or annotations lost: %+v", cm.ObjectMeta)
	}
	_ = ed
}

func TestCreatesTheConfigMapWhenMissing(t *testing.T) {
	ed, env, ns := editorIn(t)
	res, err := ed.UpsertRole(envtest.Context(t), awsauth.RoleMapping{RoleARN: nodeRole, Username: "system:node:{{EC2PrivateDNSName}}", Groups: []string{"system:bootstrappers", "system:nodes"}}, awsauth.EditOptions{})
	if err != nil || !res.Created || !res.Changed {
		t.Fatalf("%+v, %v", res, err)
	}
	cm := current(t, env, ns)
	if _, ok := cm.Data["mapUsers"]; ok {
		t.Errorf("empty keys were written: %q", cm.Data)
	}
	roles, _, _ := reference(t, cm.Data)
	if len(roles) != 1 {
		t.Fatalf("roles = %q", roles)
	}
}

func TestGuardsAndDryRun(t *testing.T) {
	ed, env, ns := editorIn(t)
	seed(t, env, ns, existing)
	ctx := envtest.Context(t)
	rv := current(t, env, ns).ResourceVersion
	cases := []struct {
		name string
		run  func() (*awsauth.Result, error)
		err  error
	}{
		{"removing the last system:masters mapping is refused", func() (*awsauth.Result, error) {
			return ed.Remove(ctx, adminRole, awsauth.EditOptions{})
		}, awsauth.ErrLastMasters},
		{"demoting the last admin is refused", func() (*awsauth.Result, error) {
			return ed.UpsertRole(ctx, awsauth.RoleMapping{RoleARN: adminRole, Username: "admin", Groups: []string{"viewers"}}, awsauth.EditOptions{})
		}, awsauth.ErrLastMasters},
		{"removing a node role is refused", func() (*awsauth.Result, error) {
			return ed.Remove(ctx, nodeRole, awsauth.EditOptions{})
		}, awsauth.ErrNodeRole},
		{"removing an unknown ARN reports it", func() (*awsauth.Result, error) {
			return ed.Remove(ctx, ciRole, awsauth.EditOptions{})
		}, awsauth.ErrNotFound},
		{"a forced dry run shows the diff and writes nothing", func() (*awsauth.Result, error) {
			res, err := ed.Remove(ctx, nodeRole, awsauth.EditOptions{Force: true, DryRun: true})
			if err == nil && (!res.Changed || !strings.Contains(res.Diff, "- - rolearn: "+nodeRole)) {
				t.Errorf("diff:\n%s", res.Diff)
			}
			return res, err
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.run(); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got := current(t, env, ns).ResourceVersion; got != rv {
				t.Fatalf("a write happened")
			}
		})
	}
	t.Run("a forced removal of the node role writes", func(t *testing.T) {
		res, err := ed.Remove(ctx, nodeRole, awsauth.EditOptions{Force: true})
		if err != nil || !res.Changed {
			t.Fatalf("%+v, %v", res, err)
		}
		roles, _, _ := reference(t, current(t, env, ns).Data)
		if len(roles) != 1 {
			t.Fatalf("roles = %q", roles)
		}
	})
}

func TestRenderingRoundTripsAwkwardValues(t *testing.T) {
	for _, v := range []string{"yes", "No", "null", "123", "0x1F", "a: b", "#hash", "-dash", "{{SessionName}}", "ci:{{SessionName}}", "'quoted'", "x #y", "~", "name with space", "日本", "ops:", "team:a:", "a:"} {
		t.Run(v, func(t *testing.T) {
			orig := parse(t, nil)
			c := orig.Clone()
			c.Roles = append(c.Roles, awsauth.RoleMapping{RoleARN: ciRole, Username: v, Groups: []string{v}})
			data := c.Data(orig)
			back, err := awsauth.ParseData(data)
			if err != nil {
				t.Fatalf("%v\n%s", err, data["mapRoles"])
			}
			if len(back.Roles) != 1 || back.Roles[0].Username != v || len(back.Roles[0].Groups) != 1 || back.Roles[0].Groups[0] != v {
				t.Fatalf("round trip of %q gave %+v\n%s", v, back.Roles, data["mapRoles"])
			}
			roles, _, _ := reference(t, data)
			if roles[0] != ciRole+"|"+v+"|"+v {
				t.Fatalf("authenticator view %q", roles[0])
			}
		})
	}
}

// The authenticator decodes entries with encoding/json, whose field names are case-insensitive:
// "Groups" grants groups. The editor must see the same mapping (so the masters guard holds and an
// upsert replaces the groups the authenticator uses), and refuse an entry with both spellings.
func TestFieldNamesAreCaseInsensitiveLikeTheAuthenticator(t *testing.T) {
	data := map[string]string{
		"mapRoles": "- RoleARN: " + adminRole + "\n  UserName: admin\n  Groups:\n    - system:masters\n",
		"mapUsers": "- UserArn: " + aliceUser + "\n  username: alice\n  GROUPS: [viewers]\n",
	}
	refRoles, refUsers, _ := reference(t, data)
	c := parse(t, data)
	if len(c.Roles) != 1 || len(c.Users) != 1 {
		t.Fatalf("parsed %+v", c)
	}
	got := []string{
		fmt.Sprintf("%s|%s|%s", c.Roles[0].RoleARN, c.Roles[0].Username, strings.Join(c.Roles[0].Groups, ",")),
		fmt.Sprintf("%s|%s|%s", c.Users[0].UserARN, c.Users[0].Username, strings.Join(c.Users[0].Groups, ",")),
	}
	if got[0] != refRoles[0] || got[1] != refUsers[0] {
		t.Fatalf("editor sees %q, the authenticator %q %q", got, refRoles, refUsers)
	}

	ed, env, ns := editorIn(t)
	seed(t, env, ns, data)
	ctx := envtest.Context(t)
	if _, err := ed.Remove(ctx, adminRole, awsauth.EditOptions{}); !errors.Is(err, awsauth.ErrLastMasters) {
		t.Fatalf("removing the only (Groups:) masters mapping: %v, want ErrLastMasters", err)
	}
	if _, err := ed.UpsertRole(ctx, awsauth.RoleMapping{RoleARN: adminRole, Username: "admin", Groups: []string{"system:masters", "ops"}}, awsauth.EditOptions{}); err != nil {
		t.Fatal(err)
	}
	roles, _, _ := reference(t, current(t, env, ns).Data)
	if len(roles) != 1 || roles[0] != adminRole+"|admin|system:masters,ops" {
		t.Fatalf("after the upsert the authenticator sees %q", roles)
	}

	for name, d := range map[string]map[string]string{
		"groups twice":  {"mapRoles": "- rolearn: " + adminRole + "\n  username: a\n  groups: [a]\n  Groups: [system:masters]\n"},
		"userarn twice": {"mapUsers": "- userarn: " + aliceUser + "\n  UserARN: " + aliceUser + "\n  username: a\n"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := awsauth.ParseData(d); !errors.Is(err, awsauth.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}
