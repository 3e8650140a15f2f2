package podidentity

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics convention of every package (README "Metrics"): Servers on one Registerer share the
// collectors, so their counts (and cache entries) add up; a nil Registerer registers nothing.
func TestServersShareTheCollectorsOfARegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	up := newUpstream(t, time.Now).client(t, 0)
	first, err := NewServer(up, ServerOptions{ClusterName: "c1", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.Close)
	second, err := NewServer(up, ServerOptions{ClusterName: "c1", Registerer: reg})
	if err != nil {
		t.Fatalf("second Server on one registry: %v", err)
	}
	t.Cleanup(second.Close)
	if first.metrics.hits != second.metrics.hits || first.metrics.entries != second.metrics.entries {
		t.Error("the second Server's collectors are not the first one's: their counts would not add up")
	}
	unregistered, err := NewServer(up, ServerOptions{ClusterName: "c1"})
	if err != nil {
		t.Fatalf("nil Registerer: %v", err)
	}
	unregistered.Close()
}
