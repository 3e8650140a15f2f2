package podidentity

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ekslink/ekslink/internal/promreg"
)

type metrics struct {
	requestDuration *prometheus.HistogramVec
	byCode          map[int]codeMetrics
	hits            prometheus.Counter
	misses          prometheus.Counter
	upstreamCalls   *prometheus.CounterVec
	upstreamLatency *prometheus.HistogramVec
	rateLimited     *prometheus.CounterVec
	entries         prometheus.Gauge
	upstream        upstreamAgentMetrics
}

// codeMetrics are the per-status children resolved once: ekslink's latency histogram and the
// upstream agent's response counter.
type codeMetrics struct {
	duration prometheus.Observer
	response prometheus.Counter
}

// upstreamAgentMetrics are the Prometheus series of aws/eks-pod-identity-agent, with its names,
// labels and label values, so that dashboards and alerts built on it keep working. They count the
// same events as the upstream agent (v0.1.37):
//
//   - pod_identity_http_response{code}: one per answer on /v1/credentials, labelled with the HTTP
//     status (pkg/handlers/eks_credential_handler.go, HandleRequest). ekslink answers 499 where the
//     client hung up before the answer; the upstream agent counts those as 500.
//   - pod_identity_cache_state{state="miss"}: a request found no servable credentials and starts
//     an EKS Auth call (internal/credsretriever/refreshing_cache.go, GetIamCredentials; requests
//     that join a call in flight are not counted, as upstream's waiters are not).
//   - pod_identity_cache_state{state="hit"}: a background renewal succeeded (upstream's
//     onCredentialRenewal; it does not count requests answered from the cache).
//   - pod_identity_cache_state{state="evicted"}: cached credentials left the cache (expired, pushed
//     out by the size bound, or dropped after a definitive refusal; upstream's onCredentialEviction).
//   - pod_identity_cache_errors{type,code}: a background renewal failed; type is "NonRecoverable"
//     for ResourceNotFound, ExpiredToken, InvalidToken and AccessDenied exceptions and
//     "Recoverable" otherwise, code the EKS Auth exception name or "Unknown" when there was no
//     EKS Auth answer (internal/cloud/eksauth/errors.go, IsIrrecoverableApiError).
type upstreamAgentMetrics struct {
	httpResponse *prometheus.CounterVec
	cacheErrors  *prometheus.CounterVec
	miss         prometheus.Counter
	renewed      prometheus.Counter
	evicted      prometheus.Counter
}

// responseCodes are the statuses the handler answers with; their observers are resolved once so the
// cached path does not look up labels.
var responseCodes = []int{
	http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound,
	http.StatusMethodNotAllowed, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusServiceUnavailable, http.StatusGatewayTimeout, statusClientClosed,
}

func newMetrics(reg prometheus.Registerer) *metrics {
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
		byCode: map[int]codeMetrics{},
	}
	m.entries = promreg.Adopt(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: sub, Name: "cache_entries", Help: "Entries in the credential cache.",
	}))
	promreg.All(reg, &m.requestDuration, &m.hits, &m.misses, &m.upstreamCalls, &m.upstreamLatency, &m.rateLimited)
	m.upstream.httpResponse = promreg.Adopt(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pod_identity_http_response", Help: "Pod Identity http response code",
	}, []string{"code"}))
	m.upstream.cacheErrors = promreg.Adopt(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pod_identity_cache_errors", Help: "Removing credentials from cache, got non recoverable error",
	}, []string{"type", "code"}))
	cacheState := promreg.Adopt(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pod_identity_cache_state", Help: "The state of credential in cache",
	}, []string{"state"}))
	m.upstream.miss = cacheState.WithLabelValues("miss")
	m.upstream.renewed = cacheState.WithLabelValues("hit")
	m.upstream.evicted = cacheState.WithLabelValues("evicted")
	for _, code := range responseCodes {
		c := strconv.Itoa(code)
		m.byCode[code] = codeMetrics{duration: m.requestDuration.WithLabelValues(c), response: m.upstream.httpResponse.WithLabelValues(c)}
	}
	return m
}

// observe records one answer; credentials reports whether it was for /v1/credentials, the only
// path the upstream agent's response counter sees.
func (m *metrics) observe(code int, seconds float64, credentials bool) {
	cm, ok := m.byCode[code]
	if !ok {
		c := strconv.Itoa(code)
		cm = codeMetrics{duration: m.requestDuration.WithLabelValues(c), response: m.upstream.httpResponse.WithLabelValues(c)}
	}
	cm.duration.Observe(seconds)
	if credentials {
		cm.response.Inc()
	}
}

// renewal records the end of a background refresh the way the upstream agent does.
func (m *metrics) renewal(err error) {
	if err == nil {
		m.upstream.renewed.Inc()
		return
	}
	typ, code := "Recoverable", "Unknown"
	var ae *AuthError
	if errors.As(err, &ae) {
		code = string(ae.Code)
		switch ae.Code {
		case AuthResourceNotFoundException, AuthExpiredTokenException,
			AuthInvalidTokenException, AuthAccessDeniedException:
			typ = "NonRecoverable"
		}
	}
	m.upstream.cacheErrors.WithLabelValues(typ, code).Inc()
}
