package podidentity

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requestDuration *prometheus.HistogramVec
	byCode          map[int]prometheus.Observer
	hits            prometheus.Counter
	misses          prometheus.Counter
	upstreamCalls   *prometheus.CounterVec
	upstreamLatency *prometheus.HistogramVec
	rateLimited     *prometheus.CounterVec
}

// responseCodes are the statuses the handler answers with; their observers are resolved once so the
// cached path does not look up labels.
var responseCodes = []int{
	http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound,
	http.StatusMethodNotAllowed, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusServiceUnavailable, http.StatusGatewayTimeout, statusClientClosed,
}

func newMetrics(reg prometheus.Registerer, entries func() float64) (*metrics, error) {
	const ns, sub = "ekslink", "pod_identity"
	m := &metrics{
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help:    "Latency of /v1/credentials requests by HTTP status code (499: the client hung up first).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"code"}),
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "cache_hits_total", Help: "Requests answered from the credential cache.",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "cache_misses_total", Help: "Requests that needed (or joined) an upstream call.",
		}),
		upstreamCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "upstream_calls_total",
			Help: "AssumeRoleForPodIdentity calls by kind (miss, refresh) and outcome.",
		}, []string{"kind", "outcome"}),
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "upstream_duration_seconds",
			Help:    "Latency of AssumeRoleForPodIdentity calls (including SDK retries) by outcome.",
			Buckets: prometheus.DefBuckets,
		}, []string{"outcome"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "rate_limited_total",
			Help: "Upstream calls refused or deferred by the agent's own rate budget, by kind (miss, refresh; source: a client over its budget of new tokens).",
		}, []string{"kind"}),
		byCode: map[int]prometheus.Observer{},
	}
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: sub, Name: "cache_entries", Help: "Entries in the credential cache.",
	}, entries)
	for _, c := range []prometheus.Collector{m.requestDuration, m.hits, m.misses, m.upstreamCalls, m.upstreamLatency, m.rateLimited, size} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, code := range responseCodes {
		m.byCode[code] = m.requestDuration.WithLabelValues(strconv.Itoa(code))
	}
	return m, nil
}

func (m *metrics) observe(code int, seconds float64) {
	if o, ok := m.byCode[code]; ok {
		o.Observe(seconds)
		return
	}
	m.requestDuration.WithLabelValues(strconv.Itoa(code)).Observe(seconds)
}
