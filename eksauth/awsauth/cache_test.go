package awsauth

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestItemCacheParsesLikeTheWholeDocument(t *testing.T) {
	docs := map[string]string{
		"typical":              "- rolearn: arn:aws:iam::111122223333:role/a\n  username: a\n  groups:\n    - system:masters\n- rolearn: arn:aws:iam::111122223333:role/b\n  username: system:node:{{EC2PrivateDNSName}}\n  groups: [system:nodes, system:bootstrappers]\n",
		"no trailing newline":  "- rolearn: arn:aws:iam::111122223333:role/a\n  username: a",
		"blank lines":          "- rolearn: arn:aws:iam::111122223333:role/a\n\n  username: a\n\n- rolearn: arn:aws:iam::111122223333:role/b\n  username: b\n",
		"block scalar":         "- rolearn: arn:aws:iam::111122223333:role/a\n  username: |\n    multi\n\n    line\n- rolearn: arn:aws:iam::111122223333:role/b\n  username: b\n",
		"comments":             "# header\n- rolearn: arn:aws:iam::111122223333:role/a\n  username: a\n",
		"indented list":        "  - rolearn: arn:aws:iam::111122223333:role/a\n    username: a\n",
		"flow list":            "[{rolearn: 'arn:aws:iam::111122223333:role/a', username: a}]",
		"anchors":              "- &x\n  rolearn: arn:aws:iam::111122223333:role/a\n  username: a\n- rolearn: arn:aws:iam::111122223333:role/b\n  username: b\n",
		"sso entry and extras": "- sso:\n    permissionSetName: Admin\n    accountID: \"111122223333\"\n  username: admin\n  groups: [system:masters]\n- rolearn: arn:aws:iam::111122223333:role/a\n  username: a\n  userid: AROA\n",
	}
	cache := &itemCache{}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			want, wantErr := ParseData(map[string]string{KeyMapRoles: doc})
			for round := 0; round < 2; round++ { // cold, then warm cache
				got, err := parseData(map[string]string{KeyMapRoles: doc}, cache)
				if (err == nil) != (wantErr == nil) {
					t.Fatalf("round %d: err %v, want %v", round, err, wantErr)
				}
				if err == nil && !reflect.DeepEqual(got.Roles, want.Roles) {
					t.Fatalf("round %d: %+v, want %+v", round, got.Roles, want.Roles)
				}
			}
		})
	}
	t.Run("malformed items are still malformed", func(t *testing.T) {
		doc := "- rolearn: arn:aws:iam::111122223333:role/a\n  username: a\n- rolearn: x\n  groups: [a\n"
		if _, err := parseData(map[string]string{KeyMapRoles: doc}, cache); !errors.Is(err, ErrMalformed) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("the cache is bounded", func(t *testing.T) {
		var b strings.Builder
		for i := 0; i < maxCachedItems+10; i++ {
			b.WriteString("- rolearn: arn:aws:iam::111122223333:role/r")
			b.WriteString(strings.Repeat("x", i%50))
			b.WriteString("\n  username: u" + string(rune('a'+i%26)) + "\n  groups: [g" + strings.Repeat("1", i%7) + "]\n  userid: U" + strconv.Itoa(i) + "\n")
		}
		if _, err := parseData(map[string]string{KeyMapRoles: b.String()}, cache); err != nil {
			t.Fatal(err)
		}
		if len(cache.m) > maxCachedItems+10 {
			t.Fatalf("cache holds %d items", len(cache.m))
		}
	})
}

func TestSplitListKeepsEveryByte(t *testing.T) {
	cases := map[string]struct {
		doc    string
		items  int
		indent int
		split  bool
	}{
		"plain":             {"- a: 1\n  b: 2\n- a: 3\n", 2, 0, true},
		"header and footer": {"# h\n\n- a: 1\n# about the second\n- a: 2\n  # inside\n  b: 3\n# f\n", 2, 0, true},
		"indented":          {"  - a: 1\n    b: 2\n  - a: 3\n", 2, 2, true},
		"no final newline":  {"- a: 1\n- a: 2", 2, 0, true},
		"flow":              {"[{a: 1}]", 0, 0, false},
		"anchor":            {"- &x\n  a: 1\n- *x\n", 0, 0, false},
		"uneven":            {"  - a: 1\n- a: 2\n", 0, 0, false},
		"document marker":   {"---\n- a: 1\n", 0, 0, false},
		"keep chomping":     {"- a: |+\n    x\n\n- a: 2\n", 0, 0, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			items, lay, ok := splitList(tc.doc)
			if ok != tc.split || len(items) != tc.items || lay.indent != tc.indent {
				t.Fatalf("ok=%t items=%q layout=%+v", ok, items, lay)
			}
			if ok && lay.header+strings.Join(items, "")+lay.footer != tc.doc {
				t.Fatalf("bytes lost: %q + %q + %q", lay.header, items, lay.footer)
			}
		})
	}
}

// FuzzSplitListItemsParseAlone checks what the cache and the splicing rely on: when splitList
// cuts a list, the pieces are the whole text, and each piece parsed alone reads as the same item
// as in the whole list.
func FuzzSplitListItemsParseAlone(f *testing.F) {
	for _, s := range []string{
		"- rolearn: a\n  username: b\n- rolearn: c\n",
		"# h\n- a: 1\n\n# c\n- b: |\n    x\n\n    y\n- c: >\n    z\n",
		"  - a: 1\n  # c\n  - b: [x, y]\n",
		"- a: 'x\n  y'\n- b: \"p\n  q\"\n",
		"- a: 1\n- b: 2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		items, lay, ok := splitList(s)
		if !ok {
			return
		}
		if lay.header+strings.Join(items, "")+lay.footer != s {
			t.Fatalf("bytes lost")
		}
		var whole []map[string]any
		if yaml.Unmarshal([]byte(s), &whole) != nil || len(whole) != len(items) {
			return // parseList then refuses to splice this list
		}
		for i, it := range items {
			var one []map[string]any
			if err := yaml.Unmarshal([]byte(it), &one); err != nil || len(one) != 1 || !reflect.DeepEqual(one[0], whole[i]) {
				t.Fatalf("item %d %q alone reads %v (%v), in the list %v", i, it, one, err, whole[i])
			}
		}
	})
}
