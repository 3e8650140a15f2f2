package manifest

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ekslink/ekslink/internal/testenv"
	"github.com/ekslink/ekslink/manifest/flagname"
)

func argValue(t *testing.T, args []string, flag string) string {
	t.Helper()
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+flag+"="); ok {
			return v
		}
	}
	t.Fatalf("no --%s in %v", flag, args)
	return ""
}

func TestMetricsAreOffByDefaultAndLoopback(t *testing.T) {
	_, cobjs := connectorObjects(t, func(*ConnectorOptions) {})
	pobjs := agentObjects(t, PodIdentityAgentOptions{})
	for _, k := range append(kinds(cobjs), kinds(pobjs)...) {
		if k == "Service" || k == "ServiceMonitor" {
			t.Errorf("rendered a %s without being asked", k)
		}
	}
	proxy := container(t, find[*appsv1.StatefulSet](t, cobjs).Spec.Template.Spec.Containers, ConnectorProxyContainer)
	if got := argValue(t, proxy.Args, flagname.MetricsAddr); got != DefaultMetricsAddr {
		t.Errorf("connector --metrics-addr = %q, want %q", got, DefaultMetricsAddr)
	}
}

func TestConnectorMetricsAddrIsConfigurable(t *testing.T) {
	o, objs := connectorObjects(t, func(o *ConnectorOptions) { o.MetricsAddr = "[$(POD_IP)]:9100" })
	proxy := container(t, find[*appsv1.StatefulSet](t, objs).Spec.Template.Spec.Containers, ConnectorProxyContainer)
	if got := argValue(t, proxy.Args, flagname.MetricsAddr); got != o.MetricsAddr {
		t.Errorf("--metrics-addr = %q, want %q", got, o.MetricsAddr)
	}
}

// serviceMonitor returns the rendered ServiceMonitor, or nil.
func serviceMonitor(objs []runtime.Object) *unstructured.Unstructured {
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok && u.GetKind() == "ServiceMonitor" {
			return u
		}
	}
	return nil
}

func TestMetricsServiceAndServiceMonitorSelectTheWorkload(t *testing.T) {
	m := MetricsOptions{ServiceMonitor: true, ServiceMonitorLabels: map[string]string{"release": "kube-prometheus"}, Interval: "30s", ScrapeTimeout: "10s"}
	co, cobjs := connectorObjects(t, func(o *ConnectorOptions) { o.MetricsAddr, o.Metrics = "[$(POD_IP)]:9100", m })
	pobjs := agentObjects(t, PodIdentityAgentOptions{MetricsAddr: ":2705", Metrics: m})
	for name, tc := range map[string]struct {
		objs     []runtime.Object
		template corev1.PodTemplateSpec
		port     int32
	}{
		"connector": {cobjs, find[*appsv1.StatefulSet](t, cobjs).Spec.Template, 9100},
		"agent":     {pobjs, find[*appsv1.DaemonSet](t, pobjs).Spec.Template, 2705},
	} {
		t.Run(name, func(t *testing.T) {
			if k := kinds(tc.objs); !slices.Equal(k[len(k)-2:], []string{"Service", "ServiceMonitor"}) {
				t.Fatalf("kinds = %v, want the Service and ServiceMonitor last", k)
			}
			svc := find[*corev1.Service](t, tc.objs)
			if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(tc.template.Labels)) {
				t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, tc.template.Labels)
			}
			p := svc.Spec.Ports[0]
			if p.Name != MetricsPortName || p.Port != tc.port || p.TargetPort.IntVal != tc.port {
				t.Errorf("Service port = %+v, want %s %d", p, MetricsPortName, tc.port)
			}
			sm := serviceMonitor(tc.objs)
			sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
			if !labels.SelectorFromSet(sel).Matches(labels.Set(svc.Labels)) {
				t.Errorf("ServiceMonitor selector %v does not select the Service %v", sel, svc.Labels)
			}
			eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			ep := eps[0].(map[string]any)
			if ep["port"] != MetricsPortName || ep["path"] != "/metrics" || ep["interval"] != "30s" || ep["scrapeTimeout"] != "10s" {
				t.Errorf("endpoint = %v", ep)
			}
			if sm.GetLabels()["release"] != "kube-prometheus" || sm.GetNamespace() != svc.Namespace {
				t.Errorf("ServiceMonitor metadata = %v %s", sm.GetLabels(), sm.GetNamespace())
			}
		})
	}
	// The Service alone.
	co.Metrics = MetricsOptions{Service: true}
	objs, err := RenderConnector(co)
	if err != nil || serviceMonitor(objs) != nil || kinds(objs)[len(objs)-1] != "Service" {
		t.Fatalf("Service alone: %v %v", kinds(objs), err)
	}
}

func TestInvalidMetricsOptions(t *testing.T) {
	tests := []struct {
		name string
		opts func(*ConnectorOptions)
		want string
	}{
		{"loopback address behind a Service", func(o *ConnectorOptions) { o.Metrics.Service = true },
			`MetricsAddr "127.0.0.1:8080": is loopback, which the metrics Service cannot reach: listen on the pod IP (e.g. [$(POD_IP)]:8080) or on all addresses (:8080)`},
		{"localhost behind a ServiceMonitor", func(o *ConnectorOptions) { o.MetricsAddr, o.Metrics.ServiceMonitor = "localhost:8080", true }, `is loopback`},
		{"IPv6 loopback", func(o *ConnectorOptions) { o.MetricsAddr, o.Metrics.Service = "[::1]:8080", true }, `is loopback`},
		{"random port behind a Service", func(o *ConnectorOptions) { o.MetricsAddr, o.Metrics.Service = ":0", true }, `needs a fixed port`},
		{"not host:port", func(o *ConnectorOptions) { o.MetricsAddr = "8080" }, `MetricsAddr "8080": address 8080: missing port`},
		{"port out of range", func(o *ConnectorOptions) { o.MetricsAddr = ":65536" }, `the port must be a number 0-65535`},
		{"interval", func(o *ConnectorOptions) { o.Metrics.Interval = "30 seconds" }, `Metrics.Interval "30 seconds"`},
		{"scrape timeout", func(o *ConnectorOptions) { o.Metrics.ScrapeTimeout = "1.5s" }, `Metrics.ScrapeTimeout "1.5s"`},
		{"ServiceMonitor label", func(o *ConnectorOptions) { o.Metrics.ServiceMonitorLabels = map[string]string{"release": "a b"} }, `Metrics.ServiceMonitorLabels "release=a b"`},
		{"ServiceMonitor label the renderer sets", func(o *ConnectorOptions) { o.Metrics.ServiceMonitorLabels = map[string]string{LabelName: "x"} }, `Metrics.ServiceMonitorLabels "app.kubernetes.io/name": is set by the renderer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validConnectorOptions()
			tt.opts(&o)
			_, err := RenderConnector(o)
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// A Service name is a DNS-1035 label: at most 63 characters, starting with a letter.
	_, err := RenderPodIdentityAgent(PodIdentityAgentOptions{ClusterName: "prod", Region: "eu-west-1", Name: strings.Repeat("a", 60), MetricsAddr: ":2705", Metrics: MetricsOptions{Service: true}})
	if err == nil || !strings.Contains(err.Error(), "the metrics Service "+strings.Repeat("a", 60)+"-metrics must be no more than 63 characters") {
		t.Fatalf("long name: %v", err)
	}
}

// installServiceMonitorCRD applies testdata/servicemonitor-crd-subset.yaml (the upstream CRD
// reduced to the fields ekslink renders; see the file) and waits until ServiceMonitors can be
// applied.
func installServiceMonitorCRD(t *testing.T, env *testenv.Env) {
	t.Helper()
	ctx := testenv.Context(t)
	data, err := os.ReadFile("testdata/servicemonitor-crd-subset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	crd, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(ctx, env.Config, crd, ApplyOptions{FieldManager: "test-crd"}); err != nil {
		t.Fatal(err)
	}
}

// applyWhenServed applies objs, retrying while the API server does not serve their kind yet (a
// CRD just created).
func applyWhenServed(ctx context.Context, env *testenv.Env, objs []*unstructured.Unstructured) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		last = Apply(ctx, env.Config, objs, ApplyOptions{})
		return !meta.IsNoMatchError(errors.Unwrap(last)), nil
	})
	if err != nil {
		return err
	}
	return last
}

// TestMetricsObjectsAreAcceptedByTheAPIServer applies the metrics Services for real and the
// ServiceMonitors against the upstream CRD's schema (installServiceMonitorCRD), and shows that
// schema refuses what upstream refuses.
func TestMetricsObjectsAreAcceptedByTheAPIServer(t *testing.T) {
	env := testenv.Shared(t)
	ctx := testenv.Context(t)
	ns := env.Namespace(t)
	installServiceMonitorCRD(t, env)
	m := MetricsOptions{ServiceMonitor: true, ServiceMonitorLabels: map[string]string{"release": "prom"}, Interval: "1m30s", ScrapeTimeout: "15s"}
	co, cobjs := renderConnectorIn(t, ns, "metrics-", func(o *ConnectorOptions) { o.MetricsAddr, o.Metrics = "[$(POD_IP)]:9100", m })
	pobjs := agentObjects(t, PodIdentityAgentOptions{Namespace: ns, MetricsAddr: ":2705", Metrics: m})
	applyForReal(t, env, append(cobjs, pobjs...))
	for name, port := range map[string]int32{co.Name: 9100, DefaultPodIdentityName: 2705} {
		svc, err := env.Client.CoreV1().Services(ns).Get(ctx, metricsServiceName(name), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.ClusterIP == "" || svc.Spec.Ports[0].Port != port || svc.Spec.Ports[0].TargetPort.IntVal != port {
			t.Errorf("Service %s = %+v", svc.Name, svc.Spec)
		}
	}
	// The fixture's schema is strict: what upstream refuses is refused.
	sm := mustUnstructured(t, []runtime.Object{serviceMonitor(cobjs)})[0]
	for name, mutate := range map[string]func(*unstructured.Unstructured){
		"interval not a Prometheus duration": func(u *unstructured.Unstructured) {
			eps, _, _ := unstructured.NestedSlice(u.Object, "spec", "endpoints")
			eps[0].(map[string]any)["interval"] = "90 seconds"
			_ = unstructured.SetNestedSlice(u.Object, eps, "spec", "endpoints")
		},
		"scheme outside the enum": func(u *unstructured.Unstructured) {
			eps, _, _ := unstructured.NestedSlice(u.Object, "spec", "endpoints")
			eps[0].(map[string]any)["scheme"] = "HTTP"
			_ = unstructured.SetNestedSlice(u.Object, eps, "spec", "endpoints")
		},
		"field upstream does not have": func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "x", "spec", "endpoint")
		},
		"no selector": func(u *unstructured.Unstructured) { unstructured.RemoveNestedField(u.Object, "spec", "selector") },
	} {
		t.Run(name, func(t *testing.T) {
			bad := sm.DeepCopy()
			bad.SetName("bad-" + strconv.Itoa(len(name)))
			mutate(bad)
			err := Apply(ctx, env.Config, []*unstructured.Unstructured{bad}, ApplyOptions{DryRun: true})
			var ae *ApplyError
			if !errors.As(err, &ae) || ae.Kind != "ServiceMonitor" {
				t.Fatalf("err = %v, want the ServiceMonitor refused", err)
			}
		})
	}
}
