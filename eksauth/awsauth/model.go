package awsauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/ekslink/ekslink/iamarn"
)

// ConfigMap location and data keys.
const (
	Namespace      = "kube-system"
	Name           = "aws-auth"
	KeyMapRoles    = "mapRoles"
	KeyMapUsers    = "mapUsers"
	KeyMapAccounts = "mapAccounts"

	// GroupMasters is the cluster-admin group.
	GroupMasters = "system:masters"
	// GroupNodes and GroupBootstrappers mark node roles.
	GroupNodes         = "system:nodes"
	GroupBootstrappers = "system:bootstrappers"
)

// UsernameTemplates are the placeholders aws-iam-authenticator expands in usernames.
var UsernameTemplates = []string{"{{AccountID}}", "{{SessionName}}", "{{SessionNameRaw}}", "{{AccessKeyID}}", "{{EC2PrivateDNSName}}"}

// Errors; match with errors.Is.
var (
	// ErrMalformed: the existing ConfigMap cannot be parsed; nothing was written.
	ErrMalformed = errors.New("awsauth: aws-auth ConfigMap is malformed")
	// ErrInvalid: the edit would write an invalid mapping; nothing was written.
	ErrInvalid = errors.New("awsauth: invalid mapping")
	// ErrLastMasters: the edit would remove the last system:masters mapping.
	ErrLastMasters = errors.New("awsauth: refusing to remove the last system:masters mapping (use Force if you have another way in)")
	// ErrRewrite: the edit would change entries it was not asked to change (their text or
	// comments), because the list is written in a layout the editor cannot splice into (flow
	// style, anchors, tabs, uneven indentation). Result.Diff shows what would change.
	ErrRewrite = errors.New("awsauth: refusing an edit that would rewrite entries it was not asked to change")
	// ErrNodeRole: the edit would remove or demote a node role's mapping.
	ErrNodeRole = errors.New("awsauth: refusing to remove a node role mapping (nodes using it could no longer join; use Force)")
)

// RoleMapping maps an IAM role to a Kubernetes user and groups.
type RoleMapping struct {
	// RoleARN is the role ARN (rolearn); empty for sso entries, which are kept but not modelled.
	RoleARN string
	// Username is the Kubernetes user name, possibly with templates such as {{SessionName}}.
	Username string
	// Groups are the Kubernetes groups.
	Groups []string
	// extra holds fields this package does not model (sso, userid, ...), written back as found.
	extra map[string]any
	// src is where the entry was read from (nil for a new entry).
	src *source
}

// UserMapping maps an IAM user (or account root) to a Kubernetes user and groups.
type UserMapping struct {
	// UserARN is the IAM user (or account root) ARN (userarn).
	UserARN string
	// Username is the Kubernetes user name.
	Username string
	// Groups are the Kubernetes groups.
	Groups []string
	extra  map[string]any
	src    *source
}

// Config is the typed content of aws-auth.
type Config struct {
	// Roles is mapRoles, in order.
	Roles []RoleMapping
	// Users is mapUsers, in order.
	Users []UserMapping
	// Accounts is mapAccounts: 12-digit account IDs whose principals map to their ARN.
	Accounts []string

	// raw keeps the original strings of the three keys, so unchanged lists are written back as is.
	raw map[string]string
	// layouts say how mapRoles and mapUsers are written, so an edit splices entries into them.
	layouts map[string]layout
	// broken holds the lists that could not be read (ErrMalformed), which read as empty.
	broken map[string]error
}

// Clone returns a deep copy.
func (c *Config) Clone() *Config {
	out := &Config{Accounts: slices.Clone(c.Accounts), raw: maps.Clone(c.raw), layouts: maps.Clone(c.layouts), broken: maps.Clone(c.broken)}
	for _, r := range c.Roles {
		r.Groups, r.extra = slices.Clone(r.Groups), cloneExtra(r.extra)
		out.Roles = append(out.Roles, r)
	}
	for _, u := range c.Users {
		u.Groups, u.extra = slices.Clone(u.Groups), cloneExtra(u.extra)
		out.Users = append(out.Users, u)
	}
	return out
}

func cloneExtra(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// CanonicalRoleARN returns the ARN aws-auth must hold for a role: partition-checked, path
// stripped; an assumed-role session ARN becomes its role. The warning is non-empty when the input
// was changed.
func CanonicalRoleARN(arn string) (canonical, warning string, err error) {
	p, err := iamarn.Parse(strings.TrimSpace(arn))
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c, ok := p.RoleARN()
	switch {
	case !ok:
		return "", "", fmt.Errorf("%w: %s is a %s ARN, mapRoles needs a role ARN", ErrInvalid, arn, p.Kind)
	case p.Kind == iamarn.AssumedRole:
		return c, fmt.Sprintf("%s is a session of role %s: mapping the role", arn, c), nil
	case p.Path != "/":
		return c, fmt.Sprintf("role path %q stripped from %s: aws-auth matches %s (STS drops role paths)", p.Path, arn, c), nil
	}
	return c, "", nil
}

// CanonicalUserARN checks an ARN for mapUsers (an IAM user or the account root).
func CanonicalUserARN(arn string) (string, error) {
	p, err := iamarn.Parse(strings.TrimSpace(arn))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if p.Kind != iamarn.User && p.Kind != iamarn.Root {
		return "", fmt.Errorf("%w: %s is a %s ARN, mapUsers needs a user ARN", ErrInvalid, arn, p.Kind)
	}
	return p.ARN, nil
}

var templatePattern = regexp.MustCompile(`\{\{[^}]*\}\}`)

func checkIdentity(username string, groups []string) []string {
	var problems []string
	if strings.TrimSpace(username) == "" {
		problems = append(problems, "empty username")
	}
	for _, t := range templatePattern.FindAllString(username, -1) {
		if !slices.Contains(UsernameTemplates, t) {
			problems = append(problems, fmt.Sprintf("unknown username template %s (known: %s)", t, strings.Join(UsernameTemplates, ", ")))
		}
	}
	if strings.Count(username, "{{") != len(templatePattern.FindAllString(username, -1)) {
		problems = append(problems, "unbalanced {{ in username")
	}
	for _, g := range groups {
		if strings.TrimSpace(g) == "" || strings.ContainsAny(g, " \t\n") {
			problems = append(problems, fmt.Sprintf("group %q is empty or contains whitespace", g))
		}
	}
	return problems
}

// Problems lists what an authenticator would reject or silently misread: invalid ARNs or
// partitions, role paths, unknown username templates, empty usernames or groups, values YAML types
// as numbers or booleans where the authenticator wants strings, duplicate ARNs (case-insensitive;
// the authenticator keeps the last) and malformed account IDs.
func (c *Config) Problems() []string {
	ps := c.problems()
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// problem is one finding. Findings are compared by the entry they concern (src, shared by the
// clones of an entry the edit did not change) and msg, never by position: an existing problem that
// moves because an entry above it was removed is still the same problem.
type problem struct {
	src   *source // the untouched entry it concerns; nil for a new or changed entry
	id    string  // for accounts, which have no source: the account itself
	where string  // position and ARN, for display only
	msg   string
	note  string // display-only detail that may mention other positions
}

func (p problem) String() string {
	if p.note != "" {
		return p.where + ": " + p.msg + " " + p.note
	}
	return p.where + ": " + p.msg
}

// key identifies a problem across an edit; ok is false for problems of new or changed entries.
func (p problem) key() (problemKey, bool) {
	return problemKey{p.src, p.id, p.msg}, p.src != nil || p.id != ""
}

type problemKey struct {
	src     *source
	id, msg string
}

func (c *Config) problems() []problem {
	var out []problem
	add := func(src *source, where string, msgs ...string) {
		for _, m := range msgs {
			out = append(out, problem{src: src, where: where, msg: m})
		}
	}
	seen := map[string]int{}
	for i, r := range c.Roles {
		where := fmt.Sprintf("mapRoles[%d] %s", i, r.RoleARN)
		if r.RoleARN == "" {
			where = fmt.Sprintf("mapRoles[%d] (no rolearn)", i)
			if hasFoldedKey(r.extra, "sso") {
				where = fmt.Sprintf("mapRoles[%d] (sso)", i)
			}
		}
		var src *source
		if r.src.unchanged(r.RoleARN, r.Username, r.Groups) {
			src = r.src
			add(src, where, src.problems...)
		}
		if r.RoleARN == "" {
			continue // sso entries are not modelled
		}
		canon, warn, err := CanonicalRoleARN(r.RoleARN)
		if err != nil {
			add(src, where, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		} else if warn != "" {
			add(src, where, warn)
		}
		if canon == "" {
			canon = r.RoleARN
		}
		key := "role " + strings.ToLower(canon)
		if j, dup := seen[key]; dup {
			out = append(out, problem{src: src, where: where, msg: "duplicate of an earlier mapping of the same role (the authenticator uses the last)", note: fmt.Sprintf("(mapRoles[%d])", j)})
		}
		seen[key] = i
		add(src, where, checkIdentity(r.Username, r.Groups)...)
	}
	for i, u := range c.Users {
		where := fmt.Sprintf("mapUsers[%d] %s", i, u.UserARN)
		if u.UserARN == "" {
			where = fmt.Sprintf("mapUsers[%d] (no userarn)", i)
		}
		var src *source
		if u.src.unchanged(u.UserARN, u.Username, u.Groups) {
			src = u.src
			add(src, where, src.problems...)
		}
		if u.UserARN == "" {
			continue // ignored by the authenticator, reported above
		}
		if _, err := CanonicalUserARN(u.UserARN); err != nil {
			add(src, where, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
		key := "user " + strings.ToLower(u.UserARN)
		if j, dup := seen[key]; dup {
			out = append(out, problem{src: src, where: where, msg: "duplicate of an earlier mapping of the same user (the authenticator uses the last)", note: fmt.Sprintf("(mapUsers[%d])", j)})
		}
		seen[key] = i
		add(src, where, checkIdentity(u.Username, u.Groups)...)
	}
	acct := map[string]bool{}
	for i, a := range c.Accounts {
		// An account is its own identity: the same value is the same entry.
		where := fmt.Sprintf("mapAccounts[%d] %q", i, a)
		if len(a) != 12 || strings.Trim(a, "0123456789") != "" {
			out = append(out, problem{id: a, where: where, msg: "not a 12-digit account ID"})
		}
		if acct[a] {
			out = append(out, problem{id: a, where: where, msg: "duplicate"})
		}
		acct[a] = true
	}
	return out
}

func roleMatches(r RoleMapping, canon string) bool {
	if r.RoleARN == "" {
		return false
	}
	c, _, err := CanonicalRoleARN(r.RoleARN)
	if err != nil {
		c = r.RoleARN
	}
	return strings.EqualFold(c, canon)
}

// UpsertRole adds or replaces the mapping of m.RoleARN (matched canonically, case-insensitively;
// duplicates collapse into one). It reports whether anything changed and any warnings.
func (c *Config) UpsertRole(m RoleMapping) (changed bool, warnings []string, err error) {
	canon, warn, err := CanonicalRoleARN(m.RoleARN)
	if err != nil {
		return false, nil, err
	}
	if warn != "" {
		warnings = append(warnings, warn)
	}
	if p := checkIdentity(m.Username, m.Groups); len(p) > 0 {
		return false, warnings, fmt.Errorf("%w: role %s: %s", ErrInvalid, canon, strings.Join(p, "; "))
	}
	entry := RoleMapping{RoleARN: canon, Username: m.Username, Groups: slices.Clone(m.Groups)}
	changed, collapsed := upsertMapping(&c.Roles, entry, canon,
		func(r RoleMapping) bool { return roleMatches(r, canon) },
		func(cur RoleMapping) bool {
			return cur.RoleARN == canon && cur.Username == m.Username && slices.Equal(cur.Groups, m.Groups)
		},
		func(e *RoleMapping, last RoleMapping) { e.extra, e.src = last.extra, last.src })
	return changed, append(warnings, collapsed...), nil
}

// UpsertUser adds or replaces the mapping of m.UserARN (case-insensitive; duplicates collapse).
func (c *Config) UpsertUser(m UserMapping) (changed bool, warnings []string, err error) {
	arn, err := CanonicalUserARN(m.UserARN)
	if err != nil {
		return false, nil, err
	}
	if p := checkIdentity(m.Username, m.Groups); len(p) > 0 {
		return false, nil, fmt.Errorf("%w: user %s: %s", ErrInvalid, arn, strings.Join(p, "; "))
	}
	entry := UserMapping{UserARN: arn, Username: m.Username, Groups: slices.Clone(m.Groups)}
	changed, warnings = upsertMapping(&c.Users, entry, arn,
		func(u UserMapping) bool { return strings.EqualFold(u.UserARN, arn) },
		func(cur UserMapping) bool {
			return cur.UserARN == arn && cur.Username == m.Username && slices.Equal(cur.Groups, m.Groups)
		},
		func(e *UserMapping, last UserMapping) { e.extra, e.src = last.extra, last.src })
	return changed, warnings, nil
}

// upsertMapping puts entry in place of the mappings of list that match: appended when there is
// none, left alone when the only one is unchanged, otherwise written over the first one, the
// others removed. The authenticator used the last duplicate, so entry inherits its unmodelled
// fields (sso, userid). Warnings name (by name) collapsed duplicates.
func upsertMapping[M any](list *[]M, entry M, name string, match, unchanged func(M) bool, inherit func(*M, M)) (changed bool, warnings []string) {
	var idx []int
	for i, m := range *list {
		if match(m) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 1 && unchanged((*list)[idx[0]]) {
		return false, nil
	}
	if len(idx) == 0 {
		*list = append(*list, entry)
		return true, nil
	}
	inherit(&entry, (*list)[idx[len(idx)-1]])
	if len(idx) > 1 {
		warnings = append(warnings, fmt.Sprintf("%d mappings of %s collapsed into one", len(idx), name))
	}
	(*list)[idx[0]] = entry
	for k := len(idx) - 1; k >= 1; k-- {
		*list = slices.Delete(*list, idx[k], idx[k]+1)
	}
	return true, warnings
}

// Remove deletes every role or user mapping of arn (matched canonically, case-insensitively) and
// returns how many were removed.
func (c *Config) Remove(arn string) (int, error) {
	p, err := iamarn.Parse(strings.TrimSpace(arn))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	n := 0
	if canon, ok := p.RoleARN(); ok {
		before := len(c.Roles)
		c.Roles = slices.DeleteFunc(c.Roles, func(r RoleMapping) bool { return roleMatches(r, canon) })
		n = before - len(c.Roles)
	} else {
		before := len(c.Users)
		c.Users = slices.DeleteFunc(c.Users, func(u UserMapping) bool { return strings.EqualFold(u.UserARN, p.ARN) })
		n = before - len(c.Users)
	}
	return n, nil
}

// AddAccount adds a 12-digit account ID to mapAccounts (idempotent).
func (c *Config) AddAccount(id string) (bool, error) {
	if len(id) != 12 || strings.Trim(id, "0123456789") != "" {
		return false, fmt.Errorf("%w: account ID %q is not 12 digits", ErrInvalid, id)
	}
	if slices.Contains(c.Accounts, id) {
		return false, nil
	}
	c.Accounts = append(c.Accounts, id)
	return true, nil
}

// RemoveAccount removes an account ID from mapAccounts.
func (c *Config) RemoveAccount(id string) bool {
	before := len(c.Accounts)
	c.Accounts = slices.DeleteFunc(c.Accounts, func(a string) bool { return a == id })
	return len(c.Accounts) != before
}

func isNodeEntry(username string, groups []string) bool {
	return strings.Contains(username, "{{EC2PrivateDNSName}}") || slices.Contains(groups, GroupNodes) || slices.Contains(groups, GroupBootstrappers)
}

func (c *Config) mastersCount() int {
	n := 0
	for _, r := range c.Roles {
		if slices.Contains(r.Groups, GroupMasters) && !r.src.dropped(r.RoleARN, r.Username, r.Groups) {
			n++
		}
	}
	for _, u := range c.Users {
		if slices.Contains(u.Groups, GroupMasters) && !u.src.dropped(u.UserARN, u.Username, u.Groups) {
			n++
		}
	}
	return n
}

func (c *Config) nodeRoles() map[string]bool {
	out := map[string]bool{}
	for _, r := range c.Roles {
		if r.RoleARN != "" && isNodeEntry(r.Username, r.Groups) {
			key := r.RoleARN
			if c, _, err := CanonicalRoleARN(r.RoleARN); err == nil {
				key = c
			}
			out[strings.ToLower(key)] = true
		}
	}
	return out
}

// guard compares before and after an edit.
func guard(before, after *Config) error {
	if before.mastersCount() > 0 && after.mastersCount() == 0 {
		return ErrLastMasters
	}
	afterNodes := after.nodeRoles()
	for arn := range before.nodeRoles() {
		if !afterNodes[arn] {
			return fmt.Errorf("%w: %s", ErrNodeRole, arn)
		}
	}
	return nil
}
