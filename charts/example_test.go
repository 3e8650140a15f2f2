package charts_test

import (
	"fmt"

	"github.com/ekslink/ekslink/charts"
	"github.com/ekslink/ekslink/manifest"
)

// Render the connector chart like "helm template" and count the objects per kind.
func ExampleRender() {
	ch, err := charts.Load(charts.Connector)
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := charts.Render(ch, charts.Release{Namespace: "eks-connector"}, map[string]any{
		"activation":  map[string]any{"id": "5a2ee3b4-8f3c-4c5e-9a7e-0f1b2c3d4e5f", "code": "AbCdEfGhIjKlMnOpQrStUvWx"},
		"region":      "eu-west-1",
		"grantedARNs": []any{"arn:aws:iam::123456789012:role/Admin"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	objs, _ := manifest.Decode(out) // then manifest.Apply, or pipe the YAML to kubectl
	for _, o := range objs {
		fmt.Println(o.GetKind(), o.GetName())
	}
	// Output:
	// ConfigMap eks-connector-agent
	// ClusterRole eks-connector-impersonation
	// ClusterRoleBinding eks-connector-impersonation
	// Role eks-connector
	// RoleBinding eks-connector
	// Secret eks-connector-activation
	// ServiceAccount eks-connector
	// Secret eks-connector-state-0
	// Secret eks-connector-state-1
	// StatefulSet eks-connector
}

// Missing values are reported together, before anything reaches a cluster.
func ExampleRender_missingValues() {
	ch, _ := charts.Load(charts.PodIdentityAgent)
	_, err := charts.Render(ch, charts.Release{Namespace: "kube-system"}, nil)
	fmt.Println(err != nil)
	// Output: true
}
