package awsauth

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	yaml3 "go.yaml.in/yaml/v3"
)

// source is where a parsed entry came from. Clones share it, so an untouched entry is the same
// entry before and after an edit whatever its position (problems are compared by it, not by index).
type source struct {
	key   string // mapRoles or mapUsers
	index int    // position in the list as read
	// text is the entry's own text in the list (with the comments and blank lines above it), or
	// "" when the list's layout could not be cut into entries.
	text string
	// whole is the full list, to find the entry's fields when text is "" (shared by its entries).
	whole *wholeList
	// arn, username and groups as read, to tell whether an edit changed the entry.
	arn, username string
	groups        []string
	// problems are reading problems: values the authenticator reads differently than written.
	problems []string
	// extras are the names of the unmodelled fields (sso, userid, ...).
	extras []string
	// ignored: the authenticator drops this entry (no ARN, unreadable sso).
	ignored bool
}

// dropped reports whether the authenticator ignores the entry (as read, unchanged by the edit).
func (s *source) dropped(arn, username string, groups []string) bool {
	return s != nil && s.ignored && s.unchanged(arn, username, groups)
}

func (s *source) unchanged(arn, username string, groups []string) bool {
	return s != nil && s.arn == arn && s.username == username && slices.Equal(s.groups, groups)
}

// layout is how a list is written, so that an edit can splice entries into it.
type layout struct {
	split          bool // false: the list could not be cut into entries (flow style, anchors, ...)
	indent         int  // column of the entries' "- "
	header, footer string
}

var keepChomping = regexp.MustCompile(`[|>][1-9]?\+`)

// splitList cuts a block sequence into its items' texts. Comment and blank lines above an item
// belong to it; those before the first item are the header, those after the last the footer.
// Anything unusual (flow style, anchors and aliases, tabs, documents, uneven indentation) makes
// it give up, and the list is then only ever parsed whole.
func splitList(s string) (items []string, lay layout, ok bool) {
	// Anchors and aliases tie items together; a block scalar that keeps its trailing newlines
	// (|+, >+) owns the blank lines that would otherwise go to the next item.
	if strings.ContainsAny(s, "&*\t\r") || keepChomping.MatchString(s) {
		return nil, layout{}, false
	}
	indent := -1
	itemStart, pending := -1, -1 // byte offsets: current item, first pending comment/blank line
	for off := 0; off < len(s); {
		end := strings.IndexByte(s[off:], '\n')
		if end < 0 {
			end = len(s)
		} else {
			end += off + 1
		}
		line := strings.TrimRight(s[off:end], "\n")
		trimmed := strings.TrimLeft(line, " ")
		col := len(line) - len(trimmed)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			if pending < 0 {
				pending = off
			}
		case (trimmed == "-" || strings.HasPrefix(trimmed, "- ")) && (indent < 0 || col == indent):
			if indent < 0 {
				indent, lay.header, itemStart = col, s[:off], off
			} else {
				boundary := off
				if pending >= 0 {
					boundary = pending
				}
				items = append(items, s[itemStart:boundary])
				itemStart = boundary
			}
			pending = -1
		case indent >= 0 && col > indent:
			pending = -1 // comment lines inside an item stay with it
		default:
			return nil, layout{}, false
		}
		off = end
	}
	if indent < 0 {
		return nil, layout{}, false
	}
	last := len(s)
	if pending >= 0 {
		last = pending
		lay.footer = s[pending:]
	}
	items = append(items, s[itemStart:last])
	lay.split, lay.indent = true, indent
	return items, lay, true
}

// modelled reports whether an entry key is one the editor models (matched as the authenticator's
// encoding/json does: case-insensitively).
func modelled(key, arnKey string) bool {
	k := strings.ToLower(key)
	return k == arnKey || k == "username" || k == "groups"
}

// wholeList is a list's text and, once needed, its node tree (parsed once for all its entries).
type wholeList struct {
	text string
	once sync.Once
	seq  *yaml3.Node
	err  error
}

func (w *wholeList) items() ([]*yaml3.Node, error) {
	w.once.Do(func() { w.seq, w.err = parseSeq(w.text) })
	if w.err != nil {
		return nil, w.err
	}
	return w.seq.Content, nil
}

func parseSeq(text string) (*yaml3.Node, error) {
	var doc yaml3.Node
	if err := yaml3.Unmarshal([]byte(text), &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml3.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml3.SequenceNode {
		return nil, fmt.Errorf("not a YAML list")
	}
	return doc.Content[0], nil
}

// itemNode returns the mapping node of the entry src describes.
func (s *source) itemNode() (*yaml3.Node, error) {
	var items []*yaml3.Node
	index := 0
	if s.text != "" {
		seq, err := parseSeq(s.text)
		if err != nil {
			return nil, err
		}
		items = seq.Content
	} else {
		var err error
		if items, err = s.whole.items(); err != nil {
			return nil, err
		}
		index = s.index
	}
	if len(items) <= index {
		return nil, fmt.Errorf("%s[%d] is not where it was read", s.key, s.index)
	}
	item := items[index]
	if item.Kind != yaml3.MappingNode {
		return nil, fmt.Errorf("%s[%d] is not a mapping", s.key, s.index)
	}
	return item, nil
}

// extraFields returns the entry's unmodelled fields (sso, userid, ...) as YAML text, their scalars
// written exactly as they were (012345670123 stays 012345670123), and a canonical form to compare.
func extraFields(item *yaml3.Node, arnKey string) (text, canon string, err error) {
	m := &yaml3.Node{Kind: yaml3.MappingNode}
	for i := 0; i+1 < len(item.Content); i += 2 {
		if !modelled(item.Content[i].Value, arnKey) {
			m.Content = append(m.Content, item.Content[i], item.Content[i+1])
		}
	}
	if len(m.Content) == 0 {
		return "", "", nil
	}
	var b bytes.Buffer
	enc := yaml3.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return "", "", err
	}
	if err := enc.Close(); err != nil {
		return "", "", err
	}
	var c strings.Builder
	canonical(&c, m)
	return b.String(), c.String(), nil
}

// canonical writes a node's content (kinds, tags and scalar text; not style or comments).
func canonical(b *strings.Builder, n *yaml3.Node) {
	if n.Kind == yaml3.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	fmt.Fprintf(b, "(%d %s %q", n.Kind, n.ShortTag(), n.Value)
	for _, c := range n.Content {
		canonical(b, c)
	}
	b.WriteByte(')')
}
