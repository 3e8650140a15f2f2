package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

func TestAdoptSharesTheCollectorOfASecondInstance(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "ekslink_test_total", Help: "test"}
	first := Adopt(reg, prometheus.NewCounter(opts))
	second := Adopt(reg, prometheus.NewCounter(opts))
	first.Inc()
	second.Inc()
	if got := value(t, first); got != 2 {
		t.Errorf("shared counter = %v, want 2 (the second instance must adopt the first's collector)", got)
	}
}

func TestAdoptKeepsACollectorThatCannotBeRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	Adopt(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "ekslink_clash", Help: "a"}))
	g := Adopt(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "ekslink_clash", Help: "b"}))
	g.Set(1)
	if got := value(t, g); got != 1 {
		t.Errorf("gauge = %v, want 1: a clashing collector still works, unregistered", got)
	}
}
