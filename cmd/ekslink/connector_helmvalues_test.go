package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ekslink/ekslink/envtest/awsfake"
)

// --helm-values replaces the jq steps between "aws eks register-cluster" and "helm install": the
// file holds exactly the values of charts/eks-connector the registration decides (activation.id,
// activation.code, region; each a property of the chart's values.schema.json, the region matching
// its pattern), mode 0600, and nothing of the activation reaches the terminal.
func TestConnectorRegisterWritesHelmValues(t *testing.T) {
	set := useAWSFake(t, awsfake.Options{})
	file := filepath.Join(t.TempDir(), "activation-values.json")
	out, errOut, err := runEKSErr(t, "connector", "register", "--name", "edge", "--agent-role-arn", "arn:aws:iam::111122223333:role/eks-connector-agent", "--helm-values", file)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, errOut)
	}
	b, err := os.ReadFile(file)
	noErr(t, err)
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	var v map[string]any
	noErr(t, json.Unmarshal(b, &v))
	act, _ := v["activation"].(map[string]any)
	id, _ := act["id"].(string)
	code, _ := act["code"].(string)
	if len(v) != 2 || len(act) != 2 || id == "" || code == "" || v["region"] != set.Region() {
		t.Fatalf("values %s", b)
	}
	if strings.Contains(out+errOut, code) || strings.Contains(out+errOut, id) {
		t.Fatalf("the activation reached the terminal:\n%s%s", out, errOut)
	}

	var schema struct {
		Properties map[string]struct {
			Pattern    string `json:"pattern"`
			Properties map[string]any
		} `json:"properties"`
	}
	raw, err := os.ReadFile("../../charts/eks-connector/values.schema.json")
	noErr(t, err)
	noErr(t, json.Unmarshal(raw, &schema))
	for _, k := range []string{"id", "code"} {
		if _, ok := schema.Properties["activation"].Properties[k]; !ok {
			t.Errorf("the chart has no value activation.%s", k)
		}
	}
	if p := schema.Properties["region"].Pattern; !regexp.MustCompile(p).MatchString(set.Region()) {
		t.Errorf("region %s does not match the chart's pattern %s", set.Region(), p)
	}

	// A second run registers nothing and leaves the file of the first run alone.
	if out, err := runEKS(t, "connector", "register", "--name", "edge", "--agent-role-arn", "arn:aws:iam::111122223333:role/eks-connector-agent", "--helm-values", file); err != nil || !strings.Contains(out, "no change") {
		t.Fatalf("second run: %s %v", out, err)
	}
	if again, _ := os.ReadFile(file); string(again) != string(b) {
		t.Fatal("the second run overwrote the values")
	}
}
