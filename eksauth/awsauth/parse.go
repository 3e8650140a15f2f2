package awsauth

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	yaml2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

// ParseData parses the ConfigMap's data. Structural errors wrap ErrMalformed; semantic problems
// (bad ARNs, duplicates, values the authenticator reads differently than written) are reported
// by Problems instead, so an edit can still fix them.
//
// Entries are read as aws-iam-authenticator's ParseMap reads them
// (pkg/mapper/configmap/configmap.go): sigs.k8s.io/yaml's YAMLToJSON (YAML 1.1), then
// encoding/json into string fields with case-insensitive names. A username or group that YAML
// types as a number or boolean (username: 12345, groups: [yes]) fails that decoding for that field
// only: the authenticator keeps the entry with an empty value, and so does the model (with a
// problem). mapAccounts is read with yaml.v2 into strings, as the authenticator does, so an
// unquoted 012345670123 is the account 012345670123.
func ParseData(data map[string]string) (*Config, error) { return parseData(data, nil) }

// parseData fails when any list is malformed.
func parseData(data map[string]string, cache *itemCache) (*Config, error) {
	c := readData(data, cache)
	for _, k := range []string{KeyMapRoles, KeyMapUsers, KeyMapAccounts} {
		if err := c.broken[k]; err != nil {
			return nil, err
		}
	}
	return c, nil
}

// readData reads each list on its own, as the authenticator does: a malformed list is recorded in
// c.broken (the authenticator drops that whole list) and reads as empty; the others are read.
func readData(data map[string]string, cache *itemCache) *Config {
	c := &Config{raw: map[string]string{}, layouts: map[string]layout{}, broken: map[string]error{}}
	for _, k := range []string{KeyMapRoles, KeyMapUsers, KeyMapAccounts} {
		if v, ok := data[k]; ok {
			c.raw[k] = v
		}
	}
	roles, err := c.readEntries(data[KeyMapRoles], KeyMapRoles, "rolearn", cache)
	if err != nil {
		c.broken[KeyMapRoles], roles = err, nil
	}
	for _, e := range roles {
		if e.arn == "" && !hasFoldedKey(e.extra, "sso") {
			// config.RoleMapping.Validate fails: the authenticator drops this entry and keeps the
			// others. So does the model: kept as written, reported, never matched or counted.
			e.src.ignored = true
			e.src.problems = append(e.src.problems, "has neither rolearn nor sso: the authenticator ignores this entry")
		}
		c.Roles = append(c.Roles, RoleMapping{RoleARN: e.arn, Username: e.username, Groups: e.groups, extra: e.extra, src: e.src})
	}
	users, err := c.readEntries(data[KeyMapUsers], KeyMapUsers, "userarn", cache)
	if err != nil {
		c.broken[KeyMapUsers], users = err, nil
	}
	for _, e := range users {
		if e.arn == "" {
			e.src.ignored = true
			e.src.problems = append(e.src.problems, "has no userarn: the authenticator ignores this entry")
		}
		c.Users = append(c.Users, UserMapping{UserARN: e.arn, Username: e.username, Groups: e.groups, extra: e.extra, src: e.src})
	}
	if s := strings.TrimSpace(data[KeyMapAccounts]); s != "" {
		if err := yaml2Strings(s, &c.Accounts); err != nil {
			c.Accounts = nil
			c.broken[KeyMapAccounts] = fmt.Errorf("%w: %s: %v", ErrMalformed, KeyMapAccounts, err)
		}
	}
	return c
}

type entry struct {
	arn, username string
	groups        []string
	extra         map[string]any
	src           *source
}

func (c *Config) readEntries(s, key, arnKey string, cache *itemCache) ([]entry, error) {
	list, texts, lay, err := parseList(s, key, cache)
	if err != nil {
		return nil, err
	}
	c.layouts[key] = lay
	out := make([]entry, 0, len(list))
	whole := &wholeList{text: s}
	for i, m := range list {
		if err := checkFoldedKeys(m, key, i); err != nil {
			return nil, err
		}
		e := entry{src: &source{key: key, index: i, whole: whole}}
		if texts != nil {
			e.src.text = texts[i]
		}
		for k, v := range m {
			switch strings.ToLower(k) {
			case arnKey:
				e.arn = e.src.readString(v, k)
			case "username":
				e.username = e.src.readString(v, k)
			case "groups":
				e.groups = e.src.readGroups(v, k)
			default:
				if e.extra == nil {
					e.extra = map[string]any{}
				}
				e.extra[k] = v
				e.src.extras = append(e.src.extras, k)
				switch {
				case strings.EqualFold(k, "sso"):
					e.src.readSSO(v)
				case strings.EqualFold(k, "userid") && !isString(v) && v != nil:
					e.src.problems = append(e.src.problems, fmt.Sprintf("%s %v is not a string: the authenticator reads it as empty (quote it)", k, v))
				}
			}
		}
		e.src.arn, e.src.username, e.src.groups = e.arn, e.username, e.groups
		out = append(out, e)
	}
	return out, nil
}

// readString reads a string field as encoding/json does after YAMLToJSON: null is "", another
// type is a decoding error for this field only and leaves it "".
func (s *source) readString(v any, field string) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		s.problems = append(s.problems, fmt.Sprintf("%s %v is not a string: the authenticator reads it as empty (quote it)", field, x))
		return ""
	}
}

// readSSO notes sso fields that the authenticator's encoding/json cannot read as the strings its
// SSOARNMatcher wants: it then rejects the whole entry (config.RoleMapping.Validate).
func (s *source) readSSO(v any) {
	m, ok := v.(map[string]any)
	if !ok {
		s.ignored = true
		s.problems = append(s.problems, "sso is not a mapping: the authenticator ignores this entry")
		return
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if x := m[k]; !isString(x) && x != nil {
			s.ignored = true
			s.problems = append(s.problems, fmt.Sprintf("sso.%s %v is not a string (YAML read the unquoted value as a number or boolean): the authenticator ignores this entry; quote it", k, x))
		}
	}
}

// readGroups reads a []string field as encoding/json does: elements of another type are "", a
// value that is not a list gives no groups.
func (s *source) readGroups(v any, field string) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		out := make([]string, len(x))
		for j, g := range x {
			out[j] = s.readString(g, fmt.Sprintf("%s[%d]", field, j))
		}
		return out
	default:
		s.problems = append(s.problems, fmt.Sprintf("%s is not a list: the authenticator reads no groups", field))
		return nil
	}
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

// parseList parses a list with the authenticator's YAML library. texts are the items' own texts
// when the layout could be cut into items (nil otherwise).
func parseList(s, key string, cache *itemCache) (list []map[string]any, texts []string, lay layout, err error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil, layout{}, nil
	}
	texts, lay, split := splitList(s)
	if split && cache != nil {
		if list, ok := cache.parse(texts); ok {
			return list, texts, lay, nil
		}
	}
	if err := yaml.Unmarshal([]byte(s), &list); err != nil {
		return nil, nil, layout{}, fmt.Errorf("%w: %s: %v", ErrMalformed, key, err)
	}
	for i, m := range list {
		if m == nil {
			return nil, nil, layout{}, fmt.Errorf("%w: %s[%d] is empty", ErrMalformed, key, i)
		}
	}
	if split && len(texts) != len(list) {
		texts, lay = nil, layout{} // not the items the parser saw: never splice this list
	}
	if texts != nil && cache != nil {
		cache.store(texts, list)
	}
	return list, texts, lay, nil
}

// itemCache remembers parsed list items by their text. Between two versions of aws-auth almost
// every item is unchanged, so an Editor re-parses only the new ones (the parse-back of an edit's
// own result costs only the items it wrote). It is used only for lists splitList can cut into
// items; anything else is parsed whole.
type itemCache struct {
	mu sync.Mutex
	m  map[string]map[string]any
}

// maxCachedItems bounds the cache: a 1 MiB aws-auth (the API server's limit) holds ~10,000 items.
const maxCachedItems = 16384

// parse returns the items when at most half of them are unknown, parsing those one by one (a
// whole-list parse is cheaper than many small ones); false means "parse the whole text instead".
func (c *itemCache) parse(items []string) ([]map[string]any, bool) {
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
	if len(missing) > len(items)/2 && len(missing) > 8 {
		return nil, false
	}
	for _, i := range missing {
		var one []map[string]any
		if err := yaml.Unmarshal([]byte(items[i]), &one); err != nil || len(one) != 1 || one[0] == nil {
			return nil, false
		}
		out[i] = one[0]
	}
	if len(missing) > 0 {
		sub := make([]string, len(missing))
		vals := make([]map[string]any, len(missing))
		for j, i := range missing {
			sub[j], vals[j] = items[i], out[i]
		}
		c.store(sub, vals)
	}
	return out, true
}

func (c *itemCache) store(items []string, list []map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m)+len(items) > maxCachedItems {
		c.m = make(map[string]map[string]any, min(len(items), maxCachedItems))
	}
	if len(items) > maxCachedItems {
		return
	}
	for i, it := range items {
		c.m[it] = list[i]
	}
}

// yaml2Strings reads a list of strings as the authenticator reads mapAccounts: yaml.v2 into
// []string, which keeps a scalar's text (012345670123 stays as written).
func yaml2Strings(s string, out *[]string) error { return yaml2.Unmarshal([]byte(s), out) }

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}
