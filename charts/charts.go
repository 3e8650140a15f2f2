package charts

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
)

// Chart names, as accepted by Load and Render.
const (
	Connector        = "eks-connector"
	PodIdentityAgent = "eks-pod-identity-agent"
	Webhook          = "eks-pod-identity-webhook"
)

//go:embed all:eks-connector all:eks-pod-identity-agent all:eks-pod-identity-webhook
var files embed.FS

// Load returns one of the embedded charts (Connector, PodIdentityAgent or Webhook).
func Load(name string) (*chart.Chart, error) {
	if name != Connector && name != PodIdentityAgent && name != Webhook {
		return nil, fmt.Errorf("charts: unknown chart %q (have %s, %s, %s)", name, Connector, PodIdentityAgent, Webhook)
	}
	var buffered []*loader.BufferedFile
	err := fs.WalkDir(files, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		buffered = append(buffered, &loader.BufferedFile{Name: strings.TrimPrefix(p, name+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("charts: reading %s: %w", name, err)
	}
	ch, err := loader.LoadFiles(buffered)
	if err != nil {
		return nil, fmt.Errorf("charts: loading %s: %w", name, err)
	}
	return ch, nil
}

// Release names the release a chart is rendered for.
type Release struct {
	// Name of the release (default: the chart name).
	Name string
	// Namespace of the release (required: the connector's objects and the agent go there).
	Namespace string
}

// Render renders a chart like "helm template": values are merged over the chart's defaults and
// validated against its schema; the result is one multi-document YAML stream of the manifests
// in file-name order, without NOTES.txt. It is stricter than helm: a template that refers to a
// value that does not exist fails instead of rendering an empty string.
func Render(ch *chart.Chart, rel Release, values map[string]any) ([]byte, error) {
	out, err := renderFiles(ch, rel, values)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(out))
	for n := range out {
		if strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		doc := strings.TrimSpace(out[n])
		if doc == "" {
			continue
		}
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", n, doc)
	}
	return b.Bytes(), nil
}

// renderFiles renders every template of ch (NOTES.txt included), keyed by file name.
func renderFiles(ch *chart.Chart, rel Release, values map[string]any) (map[string]string, error) {
	if rel.Name == "" {
		rel.Name = ch.Name()
	}
	if rel.Namespace == "" {
		return nil, fmt.Errorf("charts: rendering %s: a release namespace is required", ch.Name())
	}
	vals, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{
		Name: rel.Name, Namespace: rel.Namespace, IsInstall: true, Revision: 1,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, fmt.Errorf("charts: values for %s: %w", ch.Name(), err)
	}
	out, err := engine.Engine{Strict: true}.Render(ch, vals)
	if err != nil {
		return nil, fmt.Errorf("charts: rendering %s: %w", ch.Name(), err)
	}
	return out, nil
}
