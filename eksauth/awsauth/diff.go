package awsauth

import (
	"fmt"
	"strings"
)

// diffContext is the number of unchanged lines shown around each change.
const diffContext = 3

// maxDiffEdits bounds the edit distance the line diff searches for. Within it the diff is minimal
// (Myers); past it the remaining changed region is shown as one replaced block. Memory stays
// O(maxDiffEdits²) and time O((N+M)·maxDiffEdits) whatever the size of the ConfigMap.
const maxDiffEdits = 1000

// diffData renders a unified-style line diff of the changed keys, "" when nothing changed.
func diffData(id string, old, new map[string]string) string {
	var b strings.Builder
	for _, k := range []string{KeyMapRoles, KeyMapUsers, KeyMapAccounts} {
		o, n := old[k], new[k]
		if o == n {
			continue
		}
		b.WriteString("--- " + id + " data." + k + "\n+++ " + id + " data." + k + " (edited)\n")
		writeHunks(&b, diffLines(splitLines(o), splitLines(n)))
	}
	return b.String()
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// edit is one line of a diff: ' ' kept, '-' removed, '+' added.
type edit struct {
	op   byte
	line string
}

// diffLines returns the edit script turning a into b. The common prefix and suffix are cut off
// first (an aws-auth edit usually changes one place), then the middle is diffed with Myers'
// algorithm, bounded by maxDiffEdits.
func diffLines(a, b []string) []edit {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	out := make([]edit, 0, len(a)+len(b)-pre-suf)
	for _, l := range a[:pre] {
		out = append(out, edit{' ', l})
	}
	am, bm := a[pre:len(a)-suf], b[pre:len(b)-suf]
	if mid, ok := myers(am, bm, maxDiffEdits); ok {
		out = append(out, mid...)
	} else {
		for _, l := range am {
			out = append(out, edit{'-', l})
		}
		for _, l := range bm {
			out = append(out, edit{'+', l})
		}
	}
	for _, l := range a[len(a)-suf:] {
		out = append(out, edit{' ', l})
	}
	return out
}

// myers is Myers' O((N+M)·D) shortest edit script; false when more than maxD edits are needed.
func myers(a, b []string, maxD int) ([]edit, bool) {
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		if n+m > maxD {
			return nil, false
		}
		out := make([]edit, 0, n+m)
		for _, l := range a {
			out = append(out, edit{'-', l})
		}
		for _, l := range b {
			out = append(out, edit{'+', l})
		}
		return out, true
	}
	limit := min(maxD, n+m)
	off := limit + 1
	v := make([]int32, 2*limit+3)
	// trace[d] holds v[k] for k in [-d, d] as it was after round d.
	var trace [][]int32
	for d := 0; d <= limit; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = int(v[off+k+1])
			} else {
				x = int(v[off+k-1]) + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = int32(x)
			if x >= n && y >= m {
				trace = append(trace, append([]int32(nil), v[off-d:off+d+1]...))
				return backtrack(a, b, trace), true
			}
		}
		trace = append(trace, append([]int32(nil), v[off-d:off+d+1]...))
	}
	return nil, false
}

func backtrack(a, b []string, trace [][]int32) []edit {
	x, y := len(a), len(b)
	var rev []edit
	at := func(d, k int) int { return int(trace[d][k+d]) }
	for d := len(trace) - 1; d > 0; d-- {
		k := x - y
		var prevK int
		if k == -d || (k != d && at(d-1, k-1) < at(d-1, k+1)) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevX := at(d-1, prevK)
		prevY := prevX - prevK
		for x > prevX && y > prevY {
			x--
			y--
			rev = append(rev, edit{' ', a[x]})
		}
		if x == prevX {
			y--
			rev = append(rev, edit{'+', b[y]})
		} else {
			x--
			rev = append(rev, edit{'-', a[x]})
		}
	}
	for x > 0 && y > 0 {
		x--
		y--
		rev = append(rev, edit{' ', a[x]})
	}
	out := make([]edit, len(rev))
	for i, e := range rev {
		out[len(rev)-1-i] = e
	}
	return out
}

// writeHunks prints the changes with diffContext unchanged lines around them, each group under an
// "@@ -oldStart,oldLines +newStart,newLines @@" header.
func writeHunks(b *strings.Builder, es []edit) {
	pos, oldLine, newLine := 0, 1, 1 // line numbers of es[pos]
	for i := 0; i < len(es); {
		if es[i].op == ' ' {
			i++
			continue
		}
		start := max(0, i-diffContext)
		// Extend the hunk while the next change is within 2*diffContext unchanged lines.
		end, gap := i, 0
		for j := i; j < len(es) && gap <= 2*diffContext; j++ {
			if es[j].op == ' ' {
				gap++
			} else {
				gap, end = 0, j
			}
		}
		stop := min(len(es), end+1+diffContext)
		for ; pos < start; pos++ {
			if es[pos].op != '+' {
				oldLine++
			}
			if es[pos].op != '-' {
				newLine++
			}
		}
		var oldN, newN int
		for _, e := range es[start:stop] {
			if e.op != '+' {
				oldN++
			}
			if e.op != '-' {
				newN++
			}
		}
		fmt.Fprintf(b, "@@ -%d,%d +%d,%d @@\n", oldLine, oldN, newLine, newN)
		for _, e := range es[start:stop] {
			b.WriteByte(e.op)
			b.WriteByte(' ')
			b.WriteString(e.line)
			b.WriteByte('\n')
		}
		i = stop
	}
}
