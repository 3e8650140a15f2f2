package impersonation

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ekslink/ekslink/internal/promreg"
)

// metrics are the proxy's Prometheus collectors, registered on a caller-supplied Registerer
// (never the global default one). With a nil Registerer they are created but not exported.
type metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	activeStreams  *prometheus.GaugeVec
	rejected       *prometheus.CounterVec
	reloads        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "ekslink", "impersonation"
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Requests served by the impersonating proxy, by HTTP status code and kind (request, watch, upgrade).",
		}, []string{"code", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help:    "Time to serve a request through the proxy (for watches and upgrades: the stream's lifetime).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800},
		}, []string{"kind"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "upstream_errors_total",
			Help: "Requests that failed to reach the API server, by reason (unavailable, tls, timeout, canceled, credentials, other).",
		}, []string{"reason"}),
		activeStreams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "active_streams",
			Help: "Long-running requests in flight (watch includes log follows), by kind.",
		}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "rejected_identities_total",
			Help: "Requests refused before reaching the API server because of their identity, by reason (missing, ambiguous, invalid, reserved).",
		}, []string{"reason"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "credential_reloads_total",
			Help: "Re-reads of the service-account token and CA files, by result (changed, unchanged, error).",
		}, []string{"result"}),
	}
	// A second Handler on the same registry shares the first one's collectors.
	promreg.All(reg, &m.requests, &m.duration, &m.upstreamErrors, &m.activeStreams, &m.rejected, &m.reloads)
	return m
}
