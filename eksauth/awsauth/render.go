package awsauth

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Data renders the three keys. A key whose list did not change semantically keeps its original
// string; in a changed list, every entry the edit did not change keeps its original text byte for
// byte (with its comments), and only new or changed entries are written anew. An empty list of a
// key that did not exist stays absent. Absent keys map to "" only when they existed before (so
// callers can delete them).
func (c *Config) Data(orig *Config) map[string]string {
	out, _, _ := c.render(orig)
	return out
}

// render is Data plus the untouched entries that could not be kept as written (lists whose layout
// cannot be cut into entries are rewritten whole) and any error reading an entry's own fields.
func (c *Config) render(orig *Config) (out map[string]string, rewritten []string, err error) {
	out = map[string]string{}
	set := func(key string, same bool, render func() (string, []string, error), empty bool) {
		_, existed := c.raw[key]
		switch {
		case same && existed:
			out[key] = c.raw[key]
		case empty && !existed:
		default:
			s, rw, rerr := render()
			out[key] = s
			rewritten = append(rewritten, rw...)
			if err == nil {
				err = rerr
			}
		}
	}
	set(KeyMapRoles, orig != nil && sameRoles(orig.Roles, c.Roles), func() (string, []string, error) {
		es := make([]entry, len(c.Roles))
		for i, r := range c.Roles {
			es[i] = entry{arn: r.RoleARN, username: r.Username, groups: r.Groups, extra: r.extra, src: r.src}
		}
		return c.renderList(KeyMapRoles, "rolearn", es)
	}, len(c.Roles) == 0)
	set(KeyMapUsers, orig != nil && sameUsers(orig.Users, c.Users), func() (string, []string, error) {
		es := make([]entry, len(c.Users))
		for i, u := range c.Users {
			es[i] = entry{arn: u.UserARN, username: u.Username, groups: u.Groups, extra: u.extra, src: u.src}
		}
		return c.renderList(KeyMapUsers, "userarn", es)
	}, len(c.Users) == 0)
	set(KeyMapAccounts, orig != nil && slices.Equal(orig.Accounts, c.Accounts), func() (string, []string, error) {
		return c.renderAccounts()
	}, len(c.Accounts) == 0)
	return out, rewritten, err
}

// renderList writes a list: header, each entry (its original text when the edit did not change it,
// else rendered), footer.
func (c *Config) renderList(key, arnKey string, es []entry) (string, []string, error) {
	lay := c.layouts[key]
	var b strings.Builder
	var rewritten []string
	var firstErr error
	b.Grow(len(c.raw[key]) + 512)
	b.WriteString(lay.header)
	for _, e := range es {
		untouched := e.src.unchanged(e.arn, e.username, e.groups) && e.src.key == key
		if untouched && lay.split && e.src.text != "" {
			writeItem(&b, e.src.text)
			continue
		}
		if untouched {
			rewritten = append(rewritten, fmt.Sprintf("%s[%d] %s", key, e.src.index, e.arn))
		}
		extras := ""
		if e.src != nil && len(e.extra) > 0 {
			item, err := e.src.itemNode()
			if err == nil {
				extras, _, err = extraFields(item, arnKey)
			}
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("reading the other fields of %s[%d] %s: %w", e.src.key, e.src.index, e.arn, err)
				}
				y, _ := yaml.Marshal(e.extra)
				extras = string(y)
			}
		}
		writeItem(&b, renderEntry(lay.indent, arnKey, e.arn, e.username, e.groups, extras))
	}
	if lay.footer != "" {
		writeItem(&b, lay.footer)
	}
	if !lay.split && strings.Contains(c.raw[key], "#") && len(es) > 0 {
		rewritten = append(rewritten, "the comments in "+key)
	}
	return b.String(), rewritten, firstErr
}

func writeItem(b *strings.Builder, s string) {
	if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
		b.WriteByte('\n')
	}
	b.WriteString(s)
}

func sameRoles(a, b []RoleMapping) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.RoleARN != y.RoleARN || x.Username != y.Username || !slices.Equal(x.Groups, y.Groups) || !sameExtra(x.extra, y.extra) {
			return false
		}
	}
	return true
}

func sameUsers(a, b []UserMapping) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.UserARN != y.UserARN || x.Username != y.Username || !slices.Equal(x.Groups, y.Groups) || !sameExtra(x.extra, y.extra) {
			return false
		}
	}
	return true
}

func sameExtra(a, b map[string]any) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
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

// renderEntry writes one list item at the list's indentation; extras is YAML text of the entry's
// unmodelled fields, kept as they were written.
func renderEntry(indent int, arnKey, arn, username string, groups []string, extras string) string {
	var b strings.Builder
	pad := strings.Repeat(" ", indent)
	first := true
	line := func(s string) {
		b.WriteString(pad)
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
			b.WriteString(pad + "  - " + q(g) + "\n")
		}
	}
	if extras != "" {
		for _, l := range strings.Split(strings.TrimSuffix(extras, "\n"), "\n") {
			line(l)
		}
	}
	return b.String()
}

// renderAccounts keeps the text of every account that was already there and quotes new ones.
func (c *Config) renderAccounts() (string, []string, error) {
	raw := c.raw[KeyMapAccounts]
	texts, lay, ok := splitList(raw)
	var have []string
	if ok && yaml2Strings(raw, &have) == nil && len(have) == len(texts) {
		var b strings.Builder
		b.WriteString(lay.header)
		free := map[string][]int{} // account -> positions of its unused texts
		for j, h := range have {
			free[h] = append(free[h], j)
		}
		for _, a := range c.Accounts {
			if js := free[a]; len(js) > 0 {
				free[a] = js[1:]
				writeItem(&b, texts[js[0]])
			} else {
				writeItem(&b, strings.Repeat(" ", lay.indent)+"- "+strconv.Quote(a)+"\n")
			}
		}
		if lay.footer != "" {
			writeItem(&b, lay.footer)
		}
		return b.String(), nil, nil
	}
	var b strings.Builder
	var rewritten []string
	had := map[string]bool{}
	if have = nil; yaml2Strings(raw, &have) == nil {
		for _, h := range have {
			had[h] = true
		}
	}
	for _, a := range c.Accounts {
		b.WriteString("- " + strconv.Quote(a) + "\n")
		if had[a] {
			rewritten = append(rewritten, "mapAccounts "+a)
		}
	}
	return b.String(), rewritten, nil
}

// checkRendered parses the rendered data back and compares it with the edited model: the mappings
// the authenticator will read, the text of every entry kept as written, and the unmodelled fields
// (sso, userid) of entries that were rewritten, compared by their YAML text.
func checkRendered(data map[string]string, want *Config, cache *itemCache) error {
	back := readData(data, cache)
	for _, k := range []string{KeyMapRoles, KeyMapUsers, KeyMapAccounts} {
		if err := back.broken[k]; err != nil && want.broken[k] == nil {
			return fmt.Errorf("the rendered aws-auth does not parse: %w", err)
		}
	}
	if !sameRoles(back.Roles, want.Roles) || !sameUsers(back.Users, want.Users) || !slices.Equal(back.Accounts, want.Accounts) {
		return fmt.Errorf("the rendered aws-auth does not parse back to the edited mappings")
	}
	check := func(key, arnKey string, ws, gs []*source, fields func(i int) (string, string, []string)) error {
		split := want.layouts[key].split
		for i, w := range ws {
			if w == nil {
				continue // a new entry: compared above
			}
			arn, username, groups := fields(i)
			if split && w.text != "" && w.key == key && w.unchanged(arn, username, groups) {
				// The comments above a list's first entry read back as the list's header, and a
				// last entry without a final newline gets one when an entry follows it.
				g, x := strings.TrimSuffix(gs[i].text, "\n"), strings.TrimSuffix(w.text, "\n")
				if g != x && (i > 0 || !strings.HasSuffix(back.layouts[key].header+g, x)) {
					return fmt.Errorf("%s[%d] %s was not kept as written", key, i, arn)
				}
				continue
			}
			if len(w.extras) == 0 {
				continue
			}
			a, err := w.extrasCanon(arnKey)
			if err != nil {
				return err
			}
			b, err := gs[i].extrasCanon(arnKey)
			if err != nil {
				return err
			}
			if a != b {
				return fmt.Errorf("the other fields of %s[%d] %s changed", key, i, arn)
			}
		}
		return nil
	}
	ws, gs := make([]*source, len(want.Roles)), make([]*source, len(back.Roles))
	for i := range want.Roles {
		ws[i], gs[i] = want.Roles[i].src, back.Roles[i].src
	}
	if err := check(KeyMapRoles, "rolearn", ws, gs, func(i int) (string, string, []string) {
		r := want.Roles[i]
		return r.RoleARN, r.Username, r.Groups
	}); err != nil {
		return err
	}
	ws, gs = make([]*source, len(want.Users)), make([]*source, len(back.Users))
	for i := range want.Users {
		ws[i], gs[i] = want.Users[i].src, back.Users[i].src
	}
	return check(KeyMapUsers, "userarn", ws, gs, func(i int) (string, string, []string) {
		u := want.Users[i]
		return u.UserARN, u.Username, u.Groups
	})
}

// extrasCanon is the canonical form of the entry's unmodelled fields.
func (s *source) extrasCanon(arnKey string) (string, error) {
	item, err := s.itemNode()
	if err != nil {
		return "", err
	}
	_, canon, err := extraFields(item, arnKey)
	return canon, err
}
