package charts

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// rendered is one chart rendering: its objects and NOTES.txt.
type rendered struct {
	namespace string
	objs      []*unstructured.Unstructured
	notes     string
}

func (r rendered) find(kind, name string) *unstructured.Unstructured {
	for _, o := range r.objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// workload is the chart's one StatefulSet, DaemonSet or Deployment.
func (r rendered) workload() *unstructured.Unstructured {
	for _, o := range r.objs {
		if o.GetKind() == "StatefulSet" || o.GetKind() == "DaemonSet" || o.GetKind() == "Deployment" {
			return o
		}
	}
	return nil
}

func (r rendered) podLabels() labels.Set {
	l, _, _ := unstructured.NestedStringMap(r.workload().Object, "spec", "template", "metadata", "labels")
	return l
}

func (r rendered) containers() []string {
	var names []string
	for _, f := range []string{"initContainers", "containers"} {
		cs, _, _ := unstructured.NestedSlice(r.workload().Object, "spec", "template", "spec", f)
		for _, c := range cs {
			names = append(names, c.(map[string]any)["name"].(string))
		}
	}
	return names
}

// pod resolves pod/<name>, <name>, daemonset/<name> or deployment/<name> to the chart's workload.
func (r rendered) pod(ref string) error {
	w := r.workload()
	if name, ok := strings.CutPrefix(ref, "deployment/"); ok {
		if w.GetKind() != "Deployment" || w.GetName() != name {
			return fmt.Errorf("no Deployment %s", name)
		}
		return nil
	}
	if name, ok := strings.CutPrefix(ref, "daemonset/"); ok {
		if w.GetKind() != "DaemonSet" || w.GetName() != name {
			return fmt.Errorf("no DaemonSet %s", name)
		}
		return nil
	}
	ref = strings.TrimPrefix(ref, "pod/")
	ordinal, err := strconv.Atoi(strings.TrimPrefix(ref, w.GetName()+"-"))
	v, _, _ := unstructured.NestedFieldNoCopy(w.Object, "spec", "replicas")
	replicas, _ := strconv.Atoi(fmt.Sprint(v))
	if w.GetKind() != "StatefulSet" || err != nil || ordinal < 0 || ordinal >= replicas {
		return fmt.Errorf("no pod %s of the StatefulSet %s (%d replicas)", ref, w.GetName(), replicas)
	}
	return nil
}

// checkKubectl checks one kubectl command line of NOTES.txt against the chart's own objects:
// the namespace, the objects, pods and containers it names and the labels it selects by exist.
// A kubectl command this does not know fails, so a new line in NOTES.txt is checked too.
func (r rendered) checkKubectl(line string) error {
	var pos []string
	var ns, container, selector string
	words := strings.Fields(line)[1:]
	for i := 0; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-n" || w == "-c" || w == "-l" || w == "-o":
			if i+1 == len(words) {
				return fmt.Errorf("%s without a value", w)
			}
			switch w {
			case "-n":
				ns = words[i+1]
			case "-c":
				container = words[i+1]
			case "-l":
				selector = words[i+1]
			}
			i++
		case strings.HasPrefix(w, "-"):
			return fmt.Errorf("unknown flag %s", w)
		default:
			pos = append(pos, w)
		}
	}
	if len(pos) == 3 && pos[0] == "get" && pos[1] == "mutatingwebhookconfiguration" { // cluster-scoped
		if ns != "" || r.find("MutatingWebhookConfiguration", pos[2]) == nil {
			return fmt.Errorf("no MutatingWebhookConfiguration %s (or a namespace given)", pos[2])
		}
		return nil
	}
	if ns != r.namespace {
		return fmt.Errorf("namespace %q, the release's is %q", ns, r.namespace)
	}
	if container != "" && !slices.Contains(r.containers(), container) {
		return fmt.Errorf("no container %s (have %v)", container, r.containers())
	}
	sel, err := labels.Parse(selector)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 2 && pos[0] == "get" && pos[1] == "pods":
		if selector == "" || !sel.Matches(r.podLabels()) {
			return fmt.Errorf("selector %q does not select the pods %v", selector, r.podLabels())
		}
	case len(pos) == 2 && pos[0] == "get" && pos[1] == "endpointslices":
		svc, ok := strings.CutPrefix(selector, "kubernetes.io/service-name=")
		if !ok || r.find("Service", svc) == nil {
			return fmt.Errorf("no Service for %q", selector)
		}
	case len(pos) == 3 && pos[0] == "get" && pos[1] == "servicemonitor":
		if r.find("ServiceMonitor", pos[2]) == nil {
			return fmt.Errorf("no ServiceMonitor %s", pos[2])
		}
	case len(pos) == 3 && pos[0] == "rollout" && pos[1] == "status":
		if err := r.pod(pos[2]); err != nil || !strings.HasPrefix(pos[2], "daemonset/") {
			return fmt.Errorf("no DaemonSet %s", pos[2])
		}
	case len(pos) == 2 && pos[0] == "logs":
		return r.pod(pos[1])
	case len(pos) == 3 && pos[0] == "port-forward":
		if err := r.pod(pos[1]); err != nil {
			return err
		}
		local, remote, ok := strings.Cut(pos[2], ":")
		if _, err := strconv.Atoi(local); !ok || err != nil || !r.serves(remote) {
			return fmt.Errorf("port-forward %s: no metrics address on port %s", pos[2], remote)
		}
	default:
		return fmt.Errorf("kubectl %s: not a command this test knows", strings.Join(pos, " "))
	}
	return nil
}

// serves reports whether a container's --metrics-addr listens on port.
func (r rendered) serves(port string) bool {
	cs, _, _ := unstructured.NestedSlice(r.workload().Object, "spec", "template", "spec", "containers")
	for _, c := range cs {
		args, _, _ := unstructured.NestedStringSlice(c.(map[string]any), "args")
		for _, a := range args {
			if strings.HasPrefix(a, "--metrics-addr=") && strings.HasSuffix(a, ":"+port) {
				return true
			}
		}
	}
	return false
}

// TestNotesNameOnlyWhatTheChartCreates renders NOTES.txt for every test case of every chart and
// checks each kubectl line against the objects of the same rendering. (The ekslink commands in
// NOTES.txt are run with --help by internal/docscheck.)
func TestNotesNameOnlyWhatTheChartCreates(t *testing.T) {
	for chartName, cases := range map[string][]chartCase{Connector: connectorCases(), PodIdentityAgent: podIdentityCases(), Webhook: webhookCases()} {
		ch, err := Load(chartName)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			t.Run(chartName+"/"+c.name, func(t *testing.T) {
				files, err := renderFiles(ch, Release{Namespace: c.namespace}, c.values)
				if err != nil {
					t.Fatal(err)
				}
				r := rendered{namespace: c.namespace, objs: renderChart(t, chartName, c.namespace, c.values), notes: files[chartName+"/templates/NOTES.txt"]}
				var n int
				for _, line := range strings.Split(r.notes, "\n") {
					line = strings.TrimSpace(line)
					if !strings.HasPrefix(line, "kubectl ") {
						continue
					}
					n++
					if err := r.checkKubectl(line); err != nil {
						t.Errorf("NOTES.txt: %q: %v", line, err)
					}
				}
				if n < 2 {
					t.Errorf("NOTES.txt has %d kubectl lines:\n%s", n, r.notes)
				}
			})
		}
	}
}
