package manifest

import "testing"

func BenchmarkRenderConnectorYAML(b *testing.B) {
	o := validConnectorOptions()
	o.GrantedARNs = []string{testARN, testARN2}
	b.ReportAllocs()
	for b.Loop() {
		objs, err := RenderConnector(o)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := YAML(objs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderPodIdentityAgentYAML(b *testing.B) {
	o := PodIdentityAgentOptions{ClusterName: "prod", Region: "eu-west-1"}
	b.ReportAllocs()
	for b.Loop() {
		objs, err := RenderPodIdentityAgent(o)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := YAML(objs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeConnectorTemplate(b *testing.B) {
	tmpl, err := ConnectorTemplate()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(tmpl); err != nil {
			b.Fatal(err)
		}
	}
}
