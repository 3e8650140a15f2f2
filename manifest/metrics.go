package manifest

import (
	"net"
	"regexp"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// MetricsPortName is the name of the metrics Service's port, which the ServiceMonitor scrapes.
const MetricsPortName = "metrics"

// MetricsOptions render what Prometheus needs to find a workload's /metrics. Both are off by
// default: the metrics address is loopback then, which no Service reaches.
type MetricsOptions struct {
	// Service renders a ClusterIP Service "<name>-metrics" in front of the pods' metrics port
	// (the port of the workload's metrics address, which must then not be loopback).
	Service bool
	// ServiceMonitor renders a prometheus-operator ServiceMonitor (monitoring.coreos.com/v1) named
	// after the workload that scrapes that Service, and the Service with it. Its CRD must exist
	// in the cluster before it is applied.
	ServiceMonitor bool
	// ServiceMonitorLabels are added to the ServiceMonitor's labels, e.g. the label your
	// Prometheus selects ServiceMonitors by (its serviceMonitorSelector).
	ServiceMonitorLabels map[string]string
	// Interval and ScrapeTimeout of the scrape, Prometheus durations such as "30s" (default:
	// Prometheus' global ones).
	Interval      string
	ScrapeTimeout string
}

// prometheusDuration is the ServiceMonitor CRD's pattern for endpoints[].interval and
// scrapeTimeout (prometheus-operator example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml).
var prometheusDuration = regexp.MustCompile(`^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`)

// metricsServiceName is the metrics Service of the workload name.
func metricsServiceName(name string) string { return name + "-metrics" }

// validateMetrics checks m for a workload whose metrics listen on addr (the value of its
// addrField option); podAddr is how that workload's containers name the pod's own address in a
// listen address (for the message).
func validateMetrics(errs *optionErrors, m MetricsOptions, name, addrField, addr, podAddr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		errs.add(optionError(addrField, addr, err.Error()))
		return
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		errs.add(optionError(addrField, addr, "the port must be a number 0-65535"))
		return
	}
	for _, d := range []struct{ field, v string }{{"Metrics.Interval", m.Interval}, {"Metrics.ScrapeTimeout", m.ScrapeTimeout}} {
		if d.v != "" && !prometheusDuration.MatchString(d.v) {
			errs.add(optionError(d.field, d.v, "must be a Prometheus duration such as 30s or 1m30s"))
		}
	}
	errs.extraLabels("Metrics.ServiceMonitorLabels", m.ServiceMonitorLabels)
	if !m.Service && !m.ServiceMonitor {
		return
	}
	if msgs := validation.IsDNS1035Label(metricsServiceName(name)); len(msgs) > 0 {
		errs.add(optionError("Name", name, "the metrics Service "+metricsServiceName(name)+" "+msgs[0]))
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		errs.add(optionError(addrField, addr, "is loopback, which the metrics Service cannot reach: listen on "+podAddr+" or on all addresses (:"+port+")"))
	}
	if port == "0" {
		errs.add(optionError(addrField, addr, "needs a fixed port for the metrics Service"))
	}
}

// renderMetrics renders the metrics Service and ServiceMonitor that m asks for (nothing when both
// are off). addr was validated by validateMetrics.
func renderMetrics(m MetricsOptions, name, namespace string, labels map[string]string, addr string) []runtime.Object {
	if !m.Service && !m.ServiceMonitor {
		return nil
	}
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	// The ServiceMonitor selects the Service by these labels: the workload's name and component.
	selector := map[string]string{LabelName: labels[LabelName], LabelComponent: labels[LabelComponent]}
	objs := []runtime.Object{&corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(metricsServiceName(name), namespace, labels),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{LabelName: labels[LabelName]},
			Ports: []corev1.ServicePort{{
				Name: MetricsPortName, Port: int32(port), TargetPort: intstr.FromInt32(int32(port)), Protocol: corev1.ProtocolTCP,
			}},
		},
	}}
	if !m.ServiceMonitor {
		return objs
	}
	smLabels := copyMap(labels)
	for k, v := range m.ServiceMonitorLabels {
		smLabels[k] = v
	}
	endpoint := map[string]any{"port": MetricsPortName, "path": "/metrics", "scheme": "http"}
	if m.Interval != "" {
		endpoint["interval"] = m.Interval
	}
	if m.ScrapeTimeout != "" {
		endpoint["scrapeTimeout"] = m.ScrapeTimeout
	}
	sm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "ServiceMonitor",
		"metadata":   map[string]any{"name": name, "namespace": namespace, "labels": stringMap(smLabels)},
		"spec": map[string]any{
			// job="<name>" rather than the Service's name.
			"jobLabel":  LabelName,
			"selector":  map[string]any{"matchLabels": stringMap(selector)},
			"endpoints": []any{endpoint},
		},
	}}
	return append(objs, sm)
}

// stringMap is m as the map type of unstructured content.
func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
