package cli

import "testing"

func TestNewRegistryHoldsTheRuntimeAndProcessCollectors(t *testing.T) {
	mfs, err := NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !seen[name] {
			t.Errorf("%s missing from the binaries' registry", name)
		}
	}
}
