package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// instrument records the upstream webhook's HTTP series on /mutate, with its names, labels and
// units (pkg/handler/middleware.go), so that existing dashboards keep working:
// http_request_count{verb,path,code}, http_request_latencies{verb,path} (a histogram in
// microseconds, 125 ms to 8 s buckets) and http_request_duration_microseconds{verb,path} (a
// summary over one hour).
func instrument(reg prometheus.Registerer, next http.Handler) (http.Handler, error) {
	count := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_request_count",
		Help: "Counter of requests broken out for each verb, path, and response code.",
	}, []string{"verb", "path", "code"})
	latencies := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_request_latencies",
		Help:    "Response latency distribution in microseconds for each verb and path",
		Buckets: prometheus.ExponentialBuckets(125000, 2.0, 7),
	}, []string{"verb", "path"})
	summary := prometheus.NewSummaryVec(prometheus.SummaryOpts{
		Name:   "http_request_duration_microseconds",
		Help:   "Response latency summary in microseconds for each verb and path.",
		MaxAge: time.Hour,
	}, []string{"verb", "path"})
	for _, c := range []prometheus.Collector{count, latencies, summary} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		us := float64(time.Since(start) / time.Microsecond)
		count.WithLabelValues(r.Method, r.URL.Path, strconv.Itoa(sw.status)).Inc()
		latencies.WithLabelValues(r.Method, r.URL.Path).Observe(us)
		summary.WithLabelValues(r.Method, r.URL.Path).Observe(us)
	}), nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
