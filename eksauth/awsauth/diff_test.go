package awsauth

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// lcsLen is the textbook quadratic longest common subsequence, the reference for minimality.
func lcsLen(a, b []string) int {
	prev := make([]int, len(b)+1)
	for i := range a {
		cur := make([]int, len(b)+1)
		for j := range b {
			if a[i] == b[j] {
				cur[j+1] = prev[j] + 1
			} else {
				cur[j+1] = max(prev[j+1], cur[j])
			}
		}
		prev = cur
	}
	return prev[len(b)]
}

func TestDiffLinesIsAMinimalEditScript(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		gen := func() []string {
			out := make([]string, r.IntN(12))
			for j := range out {
				out[j] = string(rune('a' + r.IntN(4)))
			}
			return out
		}
		a, b := gen(), gen()
		es := diffLines(a, b)
		var gotA, gotB []string
		kept := 0
		for _, e := range es {
			if e.op != '+' {
				gotA = append(gotA, e.line)
			}
			if e.op != '-' {
				gotB = append(gotB, e.line)
			}
			if e.op == ' ' {
				kept++
			}
		}
		if !slices.Equal(gotA, a) || !slices.Equal(gotB, b) {
			t.Fatalf("case %d: script %v does not turn %q into %q", i, es, a, b)
		}
		if want := lcsLen(a, b); kept != want {
			t.Fatalf("case %d: %d lines kept, the longest common subsequence has %d (%q -> %q)", i, kept, want, a, b)
		}
	}
}

func TestDiffDataShowsOnlyTheChangeWithContext(t *testing.T) {
	var old strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&old, "- rolearn: arn:aws:iam::111122223333:role/r%d\n  username: u%d\n", i, i)
	}
	o := old.String()
	n := strings.Replace(o, "username: u2500\n", "username: changed\n", 1) + "- rolearn: arn:aws:iam::111122223333:role/new\n  username: new\n"
	d := diffData("ns/aws-auth", map[string]string{KeyMapRoles: o}, map[string]string{KeyMapRoles: n})
	want := `--- ns/aws-auth data.mapRoles
+++ ns/aws-auth data.mapRoles (edited)
@@ -4999,7 +4999,7 @@
  - rolearn: arn:aws:iam::111122223333:role/r2499
    username: u2499
  - rolearn: arn:aws:iam::111122223333:role/r2500
-   username: u2500
+   username: changed
  - rolearn: arn:aws:iam::111122223333:role/r2501
    username: u2501
  - rolearn: arn:aws:iam::111122223333:role/r2502
@@ -9998,3 +9998,5 @@
    username: u4998
  - rolearn: arn:aws:iam::111122223333:role/r4999
    username: u4999
+ - rolearn: arn:aws:iam::111122223333:role/new
+   username: new
`
	if d != want {
		t.Fatalf("diff:\n%s\nwant:\n%s", d, want)
	}
}

// Past maxDiffEdits the changed region is shown as one replaced block instead of searching on.
func TestDiffLinesFallsBackToABlockPastTheBound(t *testing.T) {
	var a, b []string
	for i := range 3 * maxDiffEdits {
		a = append(a, fmt.Sprint("a", i))
		b = append(b, fmt.Sprint("b", i))
	}
	es := diffLines(a, b)
	if len(es) != len(a)+len(b) || es[0].op != '-' || es[len(es)-1].op != '+' {
		t.Fatalf("%d edits", len(es))
	}
}
