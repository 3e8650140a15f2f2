package charts

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// chartFile returns a file of an embedded chart.
func chartFile(t *testing.T, chart, name string) string {
	t.Helper()
	b, err := files.ReadFile(chart + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestChartsAcceptTheSamePodAndMetricsValues keeps what both charts take alike, alike: Helm
// charts cannot share templates or schema parts without a library chart, so the common schema
// properties, helper templates and metrics templates are written twice and compared here.
func TestChartsAcceptTheSamePodAndMetricsValues(t *testing.T) {
	schema := func(chart string) map[string]any {
		var s map[string]any
		if err := json.Unmarshal([]byte(chartFile(t, chart, "values.schema.json")), &s); err != nil {
			t.Fatal(err)
		}
		return s["properties"].(map[string]any)
	}
	c, a := schema(Connector), schema(PodIdentityAgent)
	for _, k := range []string{"global", "imagePullSecrets", "podAnnotations", "podLabels", "affinity", "priorityClassName", "nodeSelector", "tolerations"} {
		if c[k] == nil || !reflect.DeepEqual(c[k], a[k]) {
			t.Errorf("schema property %q differs:\n%s: %v\n%s: %v", k, Connector, c[k], PodIdentityAgent, a[k])
		}
	}
	cm, am := c["metrics"].(map[string]any)["properties"].(map[string]any), a["metrics"].(map[string]any)["properties"].(map[string]any)
	for _, k := range []string{"service", "serviceMonitor"} {
		if !reflect.DeepEqual(cm[k], am[k]) {
			t.Errorf("schema property metrics.%s differs", k)
		}
	}

	define := regexp.MustCompile(`(?s)\{\{- define "[A-Za-z-]+\.(withRegistry|imagePullSecrets|metricsPort)" -\}\}.*?\{\{- end \}\}`)
	helpers := func(chart string) []string {
		return define.FindAllString(strings.ReplaceAll(chartFile(t, chart, "templates/_helpers.tpl"), chart+".", "CHART."), -1)
	}
	if ch, ah := helpers(Connector), helpers(PodIdentityAgent); len(ch) != 3 || !reflect.DeepEqual(ch, ah) {
		t.Errorf("helper templates differ:\n%s\n---\n%s", strings.Join(ch, "\n"), strings.Join(ah, "\n"))
	}
	for _, f := range []string{"templates/service.yaml", "templates/servicemonitor.yaml"} {
		norm := func(chart, component string) string {
			s := strings.ReplaceAll(chartFile(t, chart, f), chart+".", "CHART.")
			s = strings.ReplaceAll(s, "app.kubernetes.io/component: "+component, "COMPONENT")
			return regexp.MustCompile(`(?m)^# .*\n`).ReplaceAllString(s, "")
		}
		if cn, an := norm(Connector, "connector"), norm(PodIdentityAgent, "pod-identity-agent"); cn != an {
			t.Errorf("%s differs:\n%s\n---\n%s", f, cn, an)
		}
	}
}
