// Package promreg registers Prometheus collectors the way every ekslink package does (the
// convention the README's "Metrics" section states): a type takes a prometheus.Registerer in its
// Options; nil keeps its collectors working but registered nowhere (never the global registry);
// a second instance on the same Registerer shares the first one's collectors instead of failing,
// so their counts add up.
// It does not create collectors or choose metric names; the packages that own the metrics do.
package promreg

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Adopt registers c on r and returns it, or returns the collector already registered under the
// same description when it has c's type, so that counts continue across instances. Any other
// registration error leaves c unregistered and returns it: metrics never stop the caller. A nil r
// registers nothing and returns c.
func Adopt[C prometheus.Collector](r prometheus.Registerer, c C) C {
	if r == nil {
		return c
	}
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

// All adopts, in place, each collector its arguments point to: pointers to the collector fields of
// a package's metrics (*prometheus.Counter, *prometheus.Gauge, *prometheus.Histogram and
// *prometheus.CounterVec, *prometheus.GaugeVec, *prometheus.HistogramVec). Anything else is a
// programming error and panics.
func All(r prometheus.Registerer, fields ...any) {
	for _, f := range fields {
		switch p := f.(type) {
		case *prometheus.Counter:
			*p = Adopt(r, *p)
		case *prometheus.Gauge:
			*p = Adopt(r, *p)
		case *prometheus.Histogram:
			*p = Adopt(r, *p)
		case **prometheus.CounterVec:
			*p = Adopt(r, *p)
		case **prometheus.GaugeVec:
			*p = Adopt(r, *p)
		case **prometheus.HistogramVec:
			*p = Adopt(r, *p)
		default:
			panic(fmt.Sprintf("promreg.All: %T is not a pointer to a collector field", f))
		}
	}
}
