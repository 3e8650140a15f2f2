package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/ekslink/ekslink/manifest"
)

// parseServer runs the server command's parsing (flags, environment, upstream merging) and returns
// the options runServer would get.
func parseServer(t *testing.T, args ...string) (*serverOptions, error) {
	t.Helper()
	var got *serverOptions
	cmd := newServerCommandWith(func(_ context.Context, o *serverOptions) error { got = o; return nil })
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.ExecuteContext(context.Background())
	return got, err
}

// The upstream agent's flags (aws/eks-pod-identity-agent cmd/server.go and cmd/root.go: names,
// shorthands, value syntax) set the ekslink option with the same meaning.
func TestUpstreamServerFlagsSetTheSameOptions(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		check func(o *serverOptions) bool
	}{
		{[]string{"--endpoint", "https://eks-auth.example"}, func(o *serverOptions) bool { return o.endpoint == "https://eks-auth.example" }},
		{[]string{"--max-cache-size", "2000"}, func(o *serverOptions) bool { return o.cacheSize == 2000 }},
		{[]string{"--max-service-qps", "3"}, func(o *serverOptions) bool { return o.rate == 3 }},
		{[]string{"--max-credential-retention-before-renewal", "3h"}, func(o *serverOptions) bool { return o.maxRetention == 3*time.Hour }},
		{[]string{"-b", "127.0.0.1", "-b", "[::1]"}, func(o *serverOptions) bool { return slices.Equal(o.bindHosts, []string{"127.0.0.1", "[::1]"}) }},
		{[]string{"--bind-hosts", "127.0.0.1", "--bind-hosts", "169.254.170.23"}, func(o *serverOptions) bool {
			return slices.Equal(o.bindHosts, []string{"127.0.0.1", "169.254.170.23"})
		}},
		{[]string{"-c", "prod", "-p", "8080"}, func(o *serverOptions) bool { return o.clusterName == "prod" && o.port == 8080 }},
		{[]string{"--rotate-credentials"}, func(o *serverOptions) bool { return o.rotateCreds }},
		{[]string{"--rotate-credentials", "true"}, func(o *serverOptions) bool { return o.rotateCreds }},
		// -v: the upstream logrus level names, and ekslink's numbers.
		{[]string{"-v", "trace"}, func(o *serverOptions) bool { return o.verbosity == 4 }},
		{[]string{"--verbosity", "error"}, func(o *serverOptions) bool { return o.verbosity == -8 }},
		{[]string{"-v", "panic"}, func(o *serverOptions) bool { return o.verbosity == -12 }},
		{[]string{"-v", "info"}, func(o *serverOptions) bool { return o.verbosity == 0 }},
		{[]string{"-v", "2"}, func(o *serverOptions) bool { return o.verbosity == 2 }},
		{[]string{"--v=1"}, func(o *serverOptions) bool { return o.verbosity == 1 }},
		// Probe and metrics addresses: ekslink's alone, upstream's alone (with upstream defaults), both agreeing.
		{nil, func(o *serverOptions) bool {
			return o.probeAddr == "127.0.0.1:2703" && o.metricsAddr == "127.0.0.1:2705"
		}},
		{[]string{"--probe-port", "9703"}, func(o *serverOptions) bool { return o.probeAddr == "127.0.0.1:9703" }},
		{[]string{"--probe-addr", "127.0.0.2:2703", "--probe-port", "2703"}, func(o *serverOptions) bool { return o.probeAddr == "127.0.0.2:2703" }},
		{[]string{"--metrics-port", "9705"}, func(o *serverOptions) bool { return o.metricsAddr == "0.0.0.0:9705" }},
		{[]string{"--metrics-address", "10.1.2.3"}, func(o *serverOptions) bool { return o.metricsAddr == "10.1.2.3:2705" }},
		{[]string{"--metrics-address", "::1", "--metrics-port", "9705"}, func(o *serverOptions) bool { return o.metricsAddr == "[::1]:9705" }},
		{[]string{"--metrics-addr", "127.0.0.1:2705", "--metrics-port", "2705"}, func(o *serverOptions) bool { return o.metricsAddr == "127.0.0.1:2705" }},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			o, err := parseServer(t, append([]string{"--cluster-name", "c"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(o) {
				t.Fatalf("options %+v", *o)
			}
		})
	}
}

// Conflicts and upstream values ekslink cannot honour are errors that say what to change.
func TestUpstreamFlagConflictsAreErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--probe-addr", "127.0.0.1:2703", "--probe-port", "2704"}, `--probe-addr="127.0.0.1:2703" and --probe-port=2704`},
		{[]string{"--probe-addr", "", "--probe-port", "2703"}, "name different addresses"},
		{[]string{"--metrics-addr", "127.0.0.1:2705", "--metrics-address", "0.0.0.0"}, "--metrics-address=0.0.0.0"},
		{[]string{"--metrics-addr", "127.0.0.1:9", "--metrics-port", "2705"}, "--metrics-port=2705"},
		{[]string{"--max-cache-size", "0"}, "ekslink always caches"},
		{[]string{"--max-credential-retention-before-renewal", "0"}, "ekslink always caches"},
		{[]string{"-v", "loud"}, "trace, debug, info"},
		{[]string{"--rotate-credentials", "false"}, "write --flag=false"},
		{[]string{"true"}, "no boolean flag precedes it"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseServer(t, append([]string{"--cluster-name", "c"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// Environment values count as given: the chart's POD_IDENTITY_PROBE_ADDR and an upstream
// --probe-port must agree.
func TestUpstreamFlagsAgainstEnvironment(t *testing.T) {
	t.Setenv("POD_IDENTITY_PROBE_ADDR", "127.0.0.1:2703")
	if o, err := parseServer(t, "--cluster-name", "c", "--probe-port", "2703"); err != nil || o.probeAddr != "127.0.0.1:2703" {
		t.Fatalf("%v %+v", err, o)
	}
	if _, err := parseServer(t, "--cluster-name", "c", "--probe-port", "2704"); err == nil {
		t.Fatal("conflicting environment and flag accepted")
	}
}

// The init container of the upstream chart runs "initialize -v trace" (templates/daemonset.yaml,
// values.yaml init.command and init.additionalArgs).
func TestInitializeIsTheInitCommand(t *testing.T) {
	root := newRootCommand()
	c, rest, err := root.Find([]string{"initialize", "-v", "trace"})
	if err != nil || c.Name() != "init" {
		t.Fatalf("found %v, %v", c, err)
	}
	if err := c.ParseFlags(rest); err != nil {
		t.Fatal(err)
	}
	if v := c.Flags().Lookup("verbosity").Value.String(); v != "4" {
		t.Fatalf("verbosity %s", v)
	}
	if err := cobra.NoArgs(c, c.Flags().Args()); err != nil {
		t.Fatal(err)
	}
}

// ekslink's own manifests (manifest, which the chart and deploy/ are tested against)
// start the agent with arguments it accepts, hybrid nodes included.
func TestOwnManifestArgumentsParse(t *testing.T) {
	for _, hybrid := range []string{"", manifest.DefaultHybridCredentialsDir} {
		objs, err := manifest.RenderPodIdentityAgent(manifest.PodIdentityAgentOptions{ClusterName: "c", Region: "eu-west-1", HybridCredentialsDir: hybrid})
		if err != nil {
			t.Fatal(err)
		}
		spec := objs[0].(*appsv1.DaemonSet).Spec.Template.Spec
		o, err := parseServer(t, spec.Containers[0].Args[1:]...)
		if err != nil || o.rotateCreds != (hybrid != "") {
			t.Fatalf("args %q: %v %+v", spec.Containers[0].Args, err, o)
		}
		root := newRootCommand()
		c, rest, err := root.Find(spec.InitContainers[0].Args)
		if err != nil || c.Name() != "init" || c.ParseFlags(rest) != nil {
			t.Fatalf("init args %q: %v", spec.InitContainers[0].Args, err)
		}
	}
}

// -v is a persistent flag of the upstream agent's root command (cmd/root.go), so it may come before
// the subcommand; it reaches the subcommand's -v here.
func TestVerbosityBeforeTheSubcommand(t *testing.T) {
	for _, args := range [][]string{{"-v", "trace", "server", "--cluster-name", "c"}, {"-v", "trace", "initialize"}} {
		c, rest, err := newRootCommand().Find(args)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ParseFlags(rest); err != nil || len(c.Flags().Args()) != 0 {
			t.Fatalf("%q: %v, arguments left %q", args, err, c.Flags().Args())
		}
		if v := c.Flags().Lookup("verbosity").Value.String(); v != "4" {
			t.Fatalf("%q: verbosity %s", args, v)
		}
	}
}
