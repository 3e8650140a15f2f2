package webhook

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ekslink/ekslink/internal/promreg"
)

// Results of an admission, the "result" label of ekslink_webhook_mutations_total.
const (
	resultMutated       = "mutated"        // a patch that changes the pod
	resultUnchanged     = "unchanged"      // configured, but the pod already had everything
	resultNotConfigured = "not_configured" // the service account is not configured
	resultInvalid       = "invalid"        // an annotation or mapping could not be used
	resultError         = "error"          // the service account could not be read
)

// metrics are the Handler's collectors, registered on Options.Registerer (promreg.Adopt).
type metrics struct {
	mutations *prometheus.CounterVec
	duration  prometheus.Histogram
	lookups   *prometheus.CounterVec
	reloads   *prometheus.CounterVec
	// podCount is the upstream's pod_identity_webhook_pod_count{method} (pkg/handler/middleware.go),
	// kept so existing dashboards still work: method sts_web_identity or container_credentials.
	podCount *prometheus.CounterVec
	// missingSA is the upstream's pod_identity_webhook_missing_sa_count (pkg/handler/middleware.go):
	// the pod's service account was not found. No labels, as upstream.
	missingSA *prometheus.CounterVec
	// used is the upstream's pod_identity_webhook_used gauge (pkg/cache/cache.go): 1 once the
	// service account informer has received a service account.
	used prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "ekslink", "webhook"
	m := &metrics{
		mutations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "mutations_total",
			Help: "Pod admissions, by credential mode (irsa, container_credentials, none) and result (mutated, unchanged, not_configured, invalid, error).",
		}, []string{"mode", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "admission_duration_seconds",
			Help:    "Time to answer an AdmissionReview, from the request's arrival to the response's last byte.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "service_account_lookups_total",
			Help: "Service account lookups, by source: api (the live GET), not_found, cache_fallback (the API server did not answer in time: the informer cache did), cache (the informer cache had it), error.",
		}, []string{"source"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "source_reloads_total",
			Help: "Reloads of the pod-identity-webhook ConfigMap and the identities file, by source (configmap, identities, associations) and result (ok, error).",
		}, []string{"source", "result"}),
		podCount: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pod_identity_webhook_pod_count",
			Help: "Indicator to how many pods are using sts web identity or container credentials",
		}, []string{"method"}),
		missingSA: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pod_identity_webhook_missing_sa_count",
			Help: "Service account did not have the right annotations or was not found in the cache.",
		}, []string{}),
		used: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pod_identity_webhook_used",
			Help: "Indicator to know pod identity webhook is used",
		}),
	}
	promreg.All(reg, &m.mutations, &m.duration, &m.lookups, &m.reloads, &m.podCount, &m.missingSA, &m.used)
	return m
}

func (m *metrics) admitted(mode Mode, result string) {
	m.mutations.WithLabelValues(string(mode), result).Inc()
	switch {
	case result != resultMutated && result != resultUnchanged:
	case mode == ModeIRSA:
		m.podCount.WithLabelValues("sts_web_identity").Inc()
	case mode == ModeContainerCredentials:
		m.podCount.WithLabelValues("container_credentials").Inc()
	}
}
