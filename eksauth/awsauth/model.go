package awsauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"

	"github.com/ekslink/ekslink/internal/iamarn"
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
}

// ParseData parses the ConfigMap's data. Structural errors wrap ErrMalformed; semantic problems
// (bad ARNs, duplicates) are reported by Problems instead, so an edit can still fix them.
func ParseData(data map[string]string) (*Config, error) { return parseData(data, nil) }

func parseData(data map[string]string, cache *itemCache) (*Config, error) {
	c := &Config{raw: map[string]string{}}
	for _, k := range []string{KeyMapRoles, KeyMapUsers, KeyMapAccounts} {
		if v, ok := data[k]; ok {
			c.raw[k] = v
		}
	}
	roles, err := parseList(data[KeyMapRoles], KeyMapRoles, cache)
	if err != nil {
		return nil, err
	}
	for i, m := range roles {
		r := RoleMapping{extra: map[string]any{}}
		if err := checkFoldedKeys(m, KeyMapRoles, i); err != nil {
			return nil, err
		}
		for k, v := range m {
			// The authenticator decodes with encoding/json, which matches field names
			// case-insensitively: "Groups" is groups.
			switch strings.ToLower(k) {
			case "rolearn":
				r.RoleARN, err = str(v, KeyMapRoles, i, k)
			case "username":
				r.Username, err = str(v, KeyMapRoles, i, k)
			case "groups":
				r.Groups, err = strs(v, KeyMapRoles, i)
			default:
				r.extra[k] = v
			}
			if err != nil {
				return nil, err
			}
		}
		if r.RoleARN == "" && !hasFoldedKey(r.extra, "sso") {
			return nil, fmt.Errorf("%w: %s[%d] has neither rolearn nor sso", ErrMalformed, KeyMapRoles, i)
		}
		c.Roles = append(c.Roles, r)
	}
	users, err := parseList(data[KeyMapUsers], KeyMapUsers, cache)
	if err != nil {
		return nil, err
	}
	for i, m := range users {
		u := UserMapping{extra: map[string]any{}}
		if err := checkFoldedKeys(m, KeyMapUsers, i); err != nil {
			return nil, err
		}
		for k, v := range m {
			switch strings.ToLower(k) {
			case "userarn":
				u.UserARN, err = str(v, KeyMapUsers, i, k)
			case "username":
				u.Username, err = str(v, KeyMapUsers, i, k)
			case "groups":
				u.Groups, err = strs(v, KeyMapUsers, i)
			default:
				u.extra[k] = v
			}
			if err != nil {
				return nil, err
			}
		}
		if u.UserARN == "" {
			return nil, fmt.Errorf("%w: %s[%d] has no userarn", ErrMalformed, KeyMapUsers, i)
		}
		c.Users = append(c.Users, u)
	}
	if s := strings.TrimSpace(data[KeyMapAccounts]); s != "" {
		var accts []any
		if err := yaml.Unmarshal([]byte(s), &accts); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, KeyMapAccounts, err)
		}
		for i, a := range accts {
			switch v := a.(type) {
			case string:
				c.Accounts = append(c.Accounts, v)
			case float64:
				if v != math.Trunc(v) || v < 0 {
					return nil, fmt.Errorf("%w: %s[%d] is not an account ID", ErrMalformed, KeyMapAccounts, i)
				}
				c.Accounts = append(c.Accounts, fmt.Sprintf("%012d", int64(v)))
			default:
				return nil, fmt.Errorf("%w: %s[%d] is not an account ID", ErrMalformed, KeyMapAccounts, i)
			}
		}
	}
	return c, nil
}

// checkFoldedKeys refuses an item with two keys that differ only in case ("groups" and
// "Groups"): the authenticator would silently use one of them, and an edit could not say which.
func checkFoldedKeys(m map[string]any, key string, i int) error {
	seen := make(map[string]string, len(m))
	for k := range m {
		lk := strings.ToLower(k)
		if other, dup := seen[lk]; dup {
			return fmt.Errorf("%w: %s[%d] has both %q and %q (keys are case-insensitive)", ErrMalformed, key, i, other, k)
		}
		seen[lk] = k
	}
	return nil
}

func hasFoldedKey(m map[string]any, want string) bool {
	for k, v := range m {
		if strings.EqualFold(k, want) && v != nil {
			return true
		}
	}
	return false
}

func parseList(s, key string, cache *itemCache) ([]map[string]any, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if cache != nil {
		if list, ok := cache.parse(s); ok {
			return list, nil
		}
	}
	var list []map[string]any
	if err := yaml.Unmarshal([]byte(s), &list); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, key, err)
	}
	for i, m := range list {
		if m == nil {
			return nil, fmt.Errorf("%w: %s[%d] is empty", ErrMalformed, key, i)
		}
	}
	return list, nil
}

// itemCache remembers parsed list items by their text. Parsing with sigs.k8s.io/yaml (the
// authenticator's parser) costs ~17 µs per entry; between two versions of aws-auth almost every
// item is unchanged, so an Editor re-parses only the new ones. It is used only for lists in plain
// block style at column 0 without anchors, aliases or tabs; anything else is parsed whole.
type itemCache struct {
	mu sync.Mutex
	m  map[string]map[string]any
}

const maxCachedItems = 4096

// splitItems cuts a block sequence at column 0 into its items' texts.
func splitItems(s string) ([]string, bool) {
	if strings.ContainsAny(s, "&*\t\r") {
		return nil, false
	}
	var items []string
	start := -1
	for off := 0; off < len(s); {
		end := strings.IndexByte(s[off:], '\n')
		if end < 0 {
			end = len(s)
		} else {
			end += off + 1
		}
		line := s[off:end]
		switch {
		case strings.HasPrefix(line, "- "):
			if start >= 0 {
				items = append(items, s[start:off])
			}
			start = off
		case start >= 0 && (strings.HasPrefix(line, " ") || strings.TrimSpace(line) == ""):
		default:
			return nil, false
		}
		off = end
	}
	if start < 0 {
		return nil, false
	}
	return append(items, s[start:]), true
}

// parse returns the list's items, parsing only the items it has not seen; false means "parse the
// whole text instead" (unusual layout, or an item that does not parse on its own).
func (c *itemCache) parse(s string) ([]map[string]any, bool) {
	items, ok := splitItems(s)
	if !ok {
		return nil, false
	}
	out := make([]map[string]any, len(items))
	var missing []int
	c.mu.Lock()
	for i, it := range items {
		if m, ok := c.m[it]; ok {
			out[i] = m
		} else {
			missing = append(missing, i)
		}
	}
	c.mu.Unlock()
	for _, i := range missing {
		var one []map[string]any
		if err := yaml.Unmarshal([]byte(items[i]), &one); err != nil || len(one) != 1 || one[0] == nil {
			return nil, false
		}
		out[i] = one[0]
	}
	if len(missing) > 0 {
		c.mu.Lock()
		if c.m == nil || len(c.m)+len(missing) > maxCachedItems {
			c.m = map[string]map[string]any{}
		}
		for _, i := range missing {
			c.m[items[i]] = out[i]
		}
		c.mu.Unlock()
	}
	return out, true
}

func str(v any, key string, i int, field string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: %s[%d].%s is not a string", ErrMalformed, key, i, field)
	}
	return s, nil
}

func strs(v any, key string, i int) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s[%d].groups is not a list", ErrMalformed, key, i)
	}
	out := make([]string, len(list))
	for j, g := range list {
		s, ok := g.(string)
		if !ok {
			return nil, fmt.Errorf("%w: %s[%d].groups[%d] is not a string", ErrMalformed, key, i, j)
		}
		out[j] = s
	}
	return out, nil
}

// Clone returns a deep copy.
func (c *Config) Clone() *Config {
	out := &Config{Accounts: slices.Clone(c.Accounts), raw: maps.Clone(c.raw)}
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

// Data renders the three keys. A key whose list did not change semantically keeps its original
// string; an empty list of a key that did not exist stays absent. Absent keys map to "" only when
// they existed before (so callers can delete them).
func (c *Config) Data(orig *Config) map[string]string {
	out := map[string]string{}
	set := func(key string, same bool, render func() string, empty bool) {
		_, existed := c.raw[key]
		switch {
		case same && existed:
			out[key] = c.raw[key]
		case empty && !existed:
		default:
			out[key] = render()
		}
	}
	set(KeyMapRoles, orig != nil && sameRoles(orig.Roles, c.Roles), func() string { return renderRoles(c.Roles) }, len(c.Roles) == 0)
	set(KeyMapUsers, orig != nil && sameUsers(orig.Users, c.Users), func() string { return renderUsers(c.Users) }, len(c.Users) == 0)
	set(KeyMapAccounts, orig != nil && slices.Equal(orig.Accounts, c.Accounts), func() string { return renderAccounts(c.Accounts) }, len(c.Accounts) == 0)
	return out
}

func sameRoles(a, b []RoleMapping) bool {
	return len(a) == len(b) && reflect.DeepEqual(normRoles(a), normRoles(b))
}

func normRoles(rs []RoleMapping) []RoleMapping {
	out := make([]RoleMapping, len(rs))
	for i, r := range rs {
		if len(r.extra) == 0 {
			r.extra = nil
		}
		if len(r.Groups) == 0 {
			r.Groups = nil
		}
		out[i] = r
	}
	return out
}

func sameUsers(a, b []UserMapping) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.UserARN != y.UserARN || x.Username != y.Username || !slices.Equal(x.Groups, y.Groups) || (len(x.extra) > 0 || len(y.extra) > 0) && !reflect.DeepEqual(x.extra, y.extra) {
			return false
		}
	}
	return true
}

// plainScalar matches strings that YAML reads back as the same string without quotes: ARNs,
// usernames with templates, group names. Anything else goes through the YAML encoder.
var plainScalar = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9:/_.@+=,{}-]*$`)

// yamlWords are plain scalars YAML 1.1 would read as booleans or null.
var yamlWords = map[string]bool{"y": true, "yes": true, "n": true, "no": true, "true": true, "false": true, "on": true, "off": true, "null": true}

func q(s string) string {
	// A plain scalar ending in ':' would start a mapping ("username: ops:" does not parse).
	if plainScalar.MatchString(s) && !yamlWords[strings.ToLower(s)] && !strings.Contains(s, ": ") && !strings.HasSuffix(s, ":") {
		return s
	}
	b, err := yaml.Marshal(s)
	if err != nil {
		return strconv.Quote(s)
	}
	return strings.TrimSuffix(string(b), "\n")
}

func renderEntry(b *strings.Builder, arnKey, arn, username string, groups []string, extra map[string]any) {
	first := true
	line := func(s string) {
		if first {
			b.WriteString("- ")
			first = false
		} else {
			b.WriteString("  ")
		}
		b.WriteString(s)
		b.WriteByte('\n')
	}
	if arn != "" {
		line(arnKey + ": " + q(arn))
	}
	line("username: " + q(username))
	if len(groups) > 0 {
		line("groups:")
		for _, g := range groups {
			b.WriteString("  - " + q(g) + "\n")
		}
	}
	if len(extra) > 0 {
		y, _ := yaml.Marshal(extra)
		for _, l := range strings.Split(strings.TrimSuffix(string(y), "\n"), "\n") {
			line(l)
		}
	}
}

func renderRoles(rs []RoleMapping) string {
	var b strings.Builder
	for _, r := range rs {
		renderEntry(&b, "rolearn", r.RoleARN, r.Username, r.Groups, r.extra)
	}
	return b.String()
}

func renderUsers(us []UserMapping) string {
	var b strings.Builder
	for _, u := range us {
		renderEntry(&b, "userarn", u.UserARN, u.Username, u.Groups, u.extra)
	}
	return b.String()
}

func renderAccounts(as []string) string {
	var b strings.Builder
	for _, a := range as {
		b.WriteString("- " + strconv.Quote(a) + "\n")
	}
	return b.String()
}

// CanonicalRoleARN returns the ARN aws-auth must hold for a role: partition-checked, path
// stripped; an assumed-role session ARN becomes its role. The warning is non-empty when the input
// was changed.
func CanonicalRoleARN(arn string) (canonical, warning string, err error) {
	p, err := iamarn.Parse(strings.TrimSpace(arn))
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	switch p.Kind {
	case iamarn.Role:
		c := fmt.Sprintf("arn:%s:iam::%s:role/%s", p.Partition, p.AccountID, p.Name)
		if p.Path != "/" {
			return c, fmt.Sprintf("role path %q stripped from %s: aws-auth matches %s (STS drops role paths)", p.Path, arn, c), nil
		}
		return c, "", nil
	case iamarn.AssumedRole:
		c := p.Canonical()
		return c, fmt.Sprintf("%s is a session of role %s: mapping the role", arn, c), nil
	default:
		return "", "", fmt.Errorf("%w: %s is a %s ARN, mapRoles needs a role ARN", ErrInvalid, arn, p.Kind)
	}
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

func checkIdentity(where, username string, groups []string) []string {
	var problems []string
	if strings.TrimSpace(username) == "" {
		problems = append(problems, where+": empty username")
	}
	for _, t := range templatePattern.FindAllString(username, -1) {
		if !slices.Contains(UsernameTemplates, t) {
			problems = append(problems, fmt.Sprintf("%s: unknown username template %s (known: %s)", where, t, strings.Join(UsernameTemplates, ", ")))
		}
	}
	if strings.Count(username, "{{") != len(templatePattern.FindAllString(username, -1)) {
		problems = append(problems, where+": unbalanced {{ in username")
	}
	for _, g := range groups {
		if strings.TrimSpace(g) == "" || strings.ContainsAny(g, " \t\n") {
			problems = append(problems, fmt.Sprintf("%s: group %q is empty or contains whitespace", where, g))
		}
	}
	return problems
}

// Problems lists what an authenticator would reject or silently misread: invalid ARNs or
// partitions, role paths, unknown username templates, empty usernames or groups, duplicate ARNs
// (case-insensitive; the authenticator keeps the last) and malformed account IDs.
func (c *Config) Problems() []string {
	var problems []string
	seen := map[string]int{}
	for i, r := range c.Roles {
		where := fmt.Sprintf("mapRoles[%d] %s", i, r.RoleARN)
		if r.RoleARN == "" {
			continue // sso entries are not modelled
		}
		canon, warn, err := CanonicalRoleARN(r.RoleARN)
		if err != nil {
			problems = append(problems, where+": "+strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		} else if warn != "" {
			problems = append(problems, where+": "+warn)
		}
		if canon == "" {
			canon = r.RoleARN
		}
		key := "role " + strings.ToLower(canon)
		if j, dup := seen[key]; dup {
			problems = append(problems, fmt.Sprintf("%s: duplicate of mapRoles[%d]", where, j))
		}
		seen[key] = i
		problems = append(problems, checkIdentity(where, r.Username, r.Groups)...)
	}
	for i, u := range c.Users {
		where := fmt.Sprintf("mapUsers[%d] %s", i, u.UserARN)
		if _, err := CanonicalUserARN(u.UserARN); err != nil {
			problems = append(problems, where+": "+strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
		key := "user " + strings.ToLower(u.UserARN)
		if j, dup := seen[key]; dup {
			problems = append(problems, fmt.Sprintf("%s: duplicate of mapUsers[%d]", where, j))
		}
		seen[key] = i
		problems = append(problems, checkIdentity(where, u.Username, u.Groups)...)
	}
	acct := map[string]bool{}
	for i, a := range c.Accounts {
		if len(a) != 12 || strings.Trim(a, "0123456789") != "" {
			problems = append(problems, fmt.Sprintf("mapAccounts[%d] %q: not a 12-digit account ID", i, a))
		}
		if acct[a] {
			problems = append(problems, fmt.Sprintf("mapAccounts[%d] %q: duplicate", i, a))
		}
		acct[a] = true
	}
	return problems
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
	if p := checkIdentity("role "+canon, m.Username, m.Groups); len(p) > 0 {
		return false, warnings, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(p, "; "))
	}
	var idx []int
	for i, r := range c.Roles {
		if roleMatches(r, canon) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 1 {
		cur := c.Roles[idx[0]]
		if cur.RoleARN == canon && cur.Username == m.Username && slices.Equal(cur.Groups, m.Groups) {
			return false, warnings, nil
		}
	}
	entry := RoleMapping{RoleARN: canon, Username: m.Username, Groups: slices.Clone(m.Groups)}
	if len(idx) == 0 {
		c.Roles = append(c.Roles, entry)
		return true, warnings, nil
	}
	entry.extra = c.Roles[idx[len(idx)-1]].extra // the authenticator used the last duplicate
	if len(idx) > 1 {
		warnings = append(warnings, fmt.Sprintf("%d mappings of %s collapsed into one", len(idx), canon))
	}
	c.Roles[idx[0]] = entry
	for k := len(idx) - 1; k >= 1; k-- {
		c.Roles = slices.Delete(c.Roles, idx[k], idx[k]+1)
	}
	return true, warnings, nil
}

// UpsertUser adds or replaces the mapping of m.UserARN (case-insensitive; duplicates collapse).
func (c *Config) UpsertUser(m UserMapping) (changed bool, warnings []string, err error) {
	arn, err := CanonicalUserARN(m.UserARN)
	if err != nil {
		return false, nil, err
	}
	if p := checkIdentity("user "+arn, m.Username, m.Groups); len(p) > 0 {
		return false, nil, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(p, "; "))
	}
	var idx []int
	for i, u := range c.Users {
		if strings.EqualFold(u.UserARN, arn) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 1 {
		cur := c.Users[idx[0]]
		if cur.UserARN == arn && cur.Username == m.Username && slices.Equal(cur.Groups, m.Groups) {
			return false, nil, nil
		}
	}
	entry := UserMapping{UserARN: arn, Username: m.Username, Groups: slices.Clone(m.Groups)}
	if len(idx) == 0 {
		c.Users = append(c.Users, entry)
		return true, nil, nil
	}
	entry.extra = c.Users[idx[len(idx)-1]].extra
	if len(idx) > 1 {
		warnings = append(warnings, fmt.Sprintf("%d mappings of %s collapsed into one", len(idx), arn))
	}
	c.Users[idx[0]] = entry
	for k := len(idx) - 1; k >= 1; k-- {
		c.Users = slices.Delete(c.Users, idx[k], idx[k]+1)
	}
	return true, warnings, nil
}

// Remove deletes every role or user mapping of arn (matched canonically, case-insensitively) and
// returns how many were removed.
func (c *Config) Remove(arn string) (int, error) {
	p, err := iamarn.Parse(strings.TrimSpace(arn))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	n := 0
	if p.Kind == iamarn.Role || p.Kind == iamarn.AssumedRole {
		canon, _, err := CanonicalRoleARN(arn)
		if err != nil {
			return 0, err
		}
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
		if slices.Contains(r.Groups, GroupMasters) {
			n++
		}
	}
	for _, u := range c.Users {
		if slices.Contains(u.Groups, GroupMasters) {
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
