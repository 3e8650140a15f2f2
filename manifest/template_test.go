package manifest

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// ConnectorValues are the sed values of the README for the connector template.
func connectorValues() map[string]string {
	return map[string]string{
		PlaceholderRegion:         "eu-west-1",
		PlaceholderActivationID:   testActivationID,
		PlaceholderActivationCode: base64.StdEncoding.EncodeToString([]byte(testActivationCode)),
		PlaceholderConnectorImage: DefaultConnectorImageRepository + ":" + DefaultVersion,
		PlaceholderSSMAgentImage:  DefaultSSMAgentImage,
		PlaceholderConsoleARN:     testARN,
	}
}

func TestConnectorTemplateAfterSubstitutionEqualsTheRenderer(t *testing.T) {
	tmpl, err := ConnectorTemplate()
	if err != nil {
		t.Fatal(err)
	}
	// The template itself is valid YAML (placeholders are quoted where they are whole values).
	if _, err := Decode(tmpl); err != nil {
		t.Fatalf("template is not valid YAML before substitution: %v", err)
	}
	out, err := Substitute(tmpl, connectorValues())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	o := validConnectorOptions()
	o.GrantedARNs = []string{testARN}
	objs, err := RenderConnector(o)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Unstructured(objs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("template has %d objects, renderer %d", len(got), len(want))
	}
	for i := range got {
		g, _ := CanonicalYAML(got[i])
		w, _ := CanonicalYAML(want[i])
		if g != w {
			t.Errorf("object %d differs:\ntemplate:\n%s\nrenderer:\n%s", i, g, w)
		}
	}
}

func TestPodIdentityAgentTemplateAfterSubstitutionEqualsTheRenderer(t *testing.T) {
	tmpl, err := PodIdentityAgentTemplate()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Substitute(tmpl, map[string]string{
		PlaceholderClusterName:      "prod",
		PlaceholderRegion:           "eu-west-1",
		PlaceholderPodIdentityImage: DefaultPodIdentityImageRepository + ":" + DefaultVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := RenderPodIdentityAgent(PodIdentityAgentOptions{ClusterName: "prod", Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Unstructured(objs)
	g, _ := CanonicalYAML(got[0])
	w, _ := CanonicalYAML(want[0])
	if len(got) != 1 || g != w {
		t.Errorf("template:\n%s\nrenderer:\n%s", g, w)
	}
}

func TestSubstituteRefusesLeftoverPlaceholders(t *testing.T) {
	tmpl, err := ConnectorTemplate()
	if err != nil {
		t.Fatal(err)
	}
	v := connectorValues()
	delete(v, PlaceholderActivationCode)
	delete(v, PlaceholderRegion)
	_, err = Substitute(tmpl, v)
	if !errors.Is(err, ErrUnsubstituted) || !strings.Contains(err.Error(), PlaceholderActivationCode) || !strings.Contains(err.Error(), PlaceholderRegion) {
		t.Fatalf("err = %v, want ErrUnsubstituted naming both placeholders", err)
	}
}

func TestDecodeRejectsObjectsWithoutIdentity(t *testing.T) {
	for name, doc := range map[string]string{
		"no kind":  "apiVersion: v1\nmetadata:\n  name: x\n",
		"no name":  "apiVersion: v1\nkind: ConfigMap\n",
		"not yaml": "kind: [",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode([]byte(doc)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	objs, err := Decode([]byte("---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\n"))
	if err != nil || len(objs) != 1 {
		t.Fatalf("empty documents: %v %d", err, len(objs))
	}
}
