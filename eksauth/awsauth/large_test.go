package awsauth

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// largeRoles returns a mapRoles of about size bytes: an admin, a node role and team roles.
func largeRoles(size int) string {
	var b strings.Builder
	b.WriteString("- rolearn: arn:aws:iam::111122223333:role/admin\n  username: admin:{{SessionName}}\n  groups:\n    - system:masters\n")
	b.WriteString("- rolearn: arn:aws:iam::111122223333:role/eks-node-group-1\n  username: system:node:{{EC2PrivateDNSName}}\n  groups:\n    - system:bootstrappers\n    - system:nodes\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "- rolearn: arn:aws:iam::111122223333:role/team-%05d\n  username: team-%05d:{{SessionName}}\n  groups:\n    - team-%05d\n", i, i, i)
	}
	return b.String()
}

// addRoleTo is one cold edit (a new Editor, as one CLI run): parse, upsert, render, self-check,
// validate, diff.
func addRoleTo(tb testing.TB, data map[string]string) *Result {
	ed := NewEditor(nil, Options{Namespace: "kube-system"})
	res, _, err := ed.plan(data, EditOptions{DryRun: true}, func(c *Config) ([]string, error) {
		_, w, err := c.UpsertRole(RoleMapping{RoleARN: "arn:aws:iam::111122223333:role/ci", Username: "ci", Groups: []string{"deployers"}})
		return w, err
	})
	if err != nil || !res.Changed || !strings.Contains(res.Diff, "+ - rolearn: arn:aws:iam::111122223333:role/ci") {
		tb.Fatalf("%v\n%+v", err, res)
	}
	return res
}

// An edit of a large aws-auth used to run a quadratic line diff: 2,000 entries (170 KB) cost
// 555 MB, and a 1 MiB map (the API server's limit) tens of GB. The whole edit must stay linear.
func TestEditMemoryIsBoundedOnALargeConfigMap(t *testing.T) {
	data := map[string]string{KeyMapRoles: largeRoles(170 << 10)}
	addRoleTo(t, data) // warm up lazily initialised package state
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	addRoleTo(t, data)
	runtime.ReadMemStats(&after)
	// ~12 MB now (mostly the authenticator's YAML parser); with the quadratic diff it was 307 MB.
	got := after.TotalAlloc - before.TotalAlloc
	t.Logf("one edit of a %d KB mapRoles allocated %.1f MB", len(data[KeyMapRoles])>>10, float64(got)/(1<<20))
	limit := uint64(40 << 20)
	if raceEnabled {
		limit = 150 << 20 // the old code allocated over 1 GB under the race detector
	}
	if got > limit {
		t.Fatalf("one edit of a %d KB mapRoles allocated %d MB, want < %d MB", len(data[KeyMapRoles])>>10, got>>20, limit>>20)
	}
}

// BenchmarkEditLargeConfigMap is one cold add-role on a 1 MiB mapRoles (the API server's limit
// for a ConfigMap) and on the 170 KB map of the report: parse, upsert, render, self-check,
// validate and diff. Goal for 1 MiB: < 1 s, < 100 MB.
func BenchmarkEditLargeConfigMap(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"170KB", 170 << 10}, {"1MiB", 1 << 20}} {
		b.Run(size.name, func(b *testing.B) {
			data := map[string]string{KeyMapRoles: largeRoles(size.bytes)}
			b.ReportAllocs()
			for b.Loop() {
				addRoleTo(b, data)
			}
		})
	}
}
