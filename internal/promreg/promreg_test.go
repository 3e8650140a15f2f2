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

func TestAllAdoptsEveryFieldInPlace(t *testing.T) {
	reg := prometheus.NewRegistry()
	type metrics struct {
		total prometheus.Counter
		vec   *prometheus.CounterVec
	}
	newMetrics := func() *metrics {
		m := &metrics{
			total: prometheus.NewCounter(prometheus.CounterOpts{Name: "ekslink_all_total", Help: "t"}),
			vec:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ekslink_all_by_result_total", Help: "v"}, []string{"result"}),
		}
		All(reg, &m.total, &m.vec)
		return m
	}
	first, second := newMetrics(), newMetrics()
	if first.total != second.total || first.vec != second.vec {
		t.Fatal("the second instance's fields are not the first one's collectors")
	}
	All(nil, &first.total) // nil registers nothing
	defer func() {
		if recover() == nil {
			t.Error("a field that is no collector pointer did not panic")
		}
	}()
	All(reg, first.total)
}
