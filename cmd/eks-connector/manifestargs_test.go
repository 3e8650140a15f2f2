package main

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/ekslink/ekslink/manifest"
	"github.com/ekslink/ekslink/manifest/flagname"
)

// TestOwnManifestArgumentsParse renders the connector (every optional argument on) and parses each
// container's arguments with this binary's own command tree, so a flag the renderer writes that the
// binary does not define fails here (the checked-in YAML and the charts are tested against the
// renderer, so they are covered too).
func TestOwnManifestArgumentsParse(t *testing.T) {
	objs, err := manifest.RenderConnector(manifest.ConnectorOptions{
		Region:         "eu-west-1",
		ActivationID:   "0f5d9c3e-8d3b-4c1e-9d52-6f2a3b4c5d6e",
		ActivationCode: "abcdefghijklmnopqrstuvwxyz",
		SSMEndpoint:    "https://ssm.eu-west-1.amazonaws.com",
		GrantedARNs:    []string{"arn:aws:iam::111122223333:role/Admin"},
		UserExtras:     true,
		MetricsAddr:    "[$(POD_IP)]:9100",
	})
	if err != nil {
		t.Fatal(err)
	}
	var sts *appsv1.StatefulSet
	for _, o := range objs {
		if s, ok := o.(*appsv1.StatefulSet); ok {
			sts = s
		}
	}
	if sts == nil {
		t.Fatal("no StatefulSet rendered")
	}
	spec := sts.Spec.Template.Spec
	parsed := 0
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		if len(c.Args) == 0 || strings.HasPrefix(c.Args[0], "-") {
			continue // not an eks-connector command line (the SSM agent)
		}
		cmd, rest, err := newRootCommand().Find(c.Args)
		if err != nil || cmd.Name() != c.Args[0] {
			t.Fatalf("%s: args %q: no subcommand %q: %v", c.Name, c.Args, c.Args[0], err)
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Fatalf("%s: args %q: %v", c.Name, c.Args, err)
		}
		for _, a := range rest {
			name := strings.SplitN(strings.TrimPrefix(a, "--"), "=", 2)[0]
			if f := cmd.Flags().Lookup(name); f == nil || !f.Changed {
				t.Errorf("%s: %q did not set a flag of %s", c.Name, a, cmd.Name())
			}
		}
		if cmd.Name() == "proxy" {
			// The configurable metrics address reaches the proxy's own flag.
			if got := cmd.Flags().Lookup(flagname.MetricsAddr).Value.String(); got != "[$(POD_IP)]:9100" {
				t.Errorf("proxy --%s = %q", flagname.MetricsAddr, got)
			}
		}
		parsed++
	}
	if parsed < 2 {
		t.Fatalf("parsed %d eks-connector command lines, want init and proxy", parsed)
	}
}
