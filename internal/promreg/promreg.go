// Package promreg registers Prometheus collectors the way every ekslink package does (the
// convention the README's "Metrics" section states): a type takes a prometheus.Registerer in its
// Options; nil keeps its collectors working but registered nowhere (never the global registry);
// a second instance on the same Registerer shares the first one's collectors instead of failing,
// so their counts add up.
// It does not create collectors or choose metric names; the packages that own the metrics do.
package promreg

import (
	"errors"

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
