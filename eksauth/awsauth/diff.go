package awsauth

import (
	"strings"
)

// diffData renders a line diff of the changed keys, "" when nothing changed.
func diffData(id string, old, new map[string]string) string {
	var b strings.Builder
	for _, k := range []string{KeyMapRoles, KeyMapUsers, KeyMapAccounts} {
		o, n := old[k], new[k]
		if o == n {
			continue
		}
		b.WriteString("--- " + id + " data." + k + "\n+++ " + id + " data." + k + " (edited)\n")
		for _, l := range diffLines(splitLines(o), splitLines(n)) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// diffLines is a longest-common-subsequence line diff; aws-auth lists are small.
func diffLines(a, b []string) []string {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			out = append(out, "  "+a[i])
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, "- "+a[i])
			i++
		default:
			out = append(out, "+ "+b[j])
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, "- "+a[i])
	}
	for ; j < m; j++ {
		out = append(out, "+ "+b[j])
	}
	return out
}
