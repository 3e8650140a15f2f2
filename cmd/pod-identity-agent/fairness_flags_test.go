package main

import (
	"testing"

	"github.com/spf13/pflag"

	"github.com/ekslink/ekslink/internal/cli"
	"github.com/ekslink/ekslink/podidentity"
)

// The fairness flags (and their environment fallbacks) reach podidentity.ServerOptions; left alone they
// are the package defaults.
func TestFairnessFlagsReachTheServerOptions(t *testing.T) {
	var f fairnessOptions
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	f.register(fs)
	t.Setenv("POD_IDENTITY_SOURCE_RATE", "0.5")
	if err := fs.Parse([]string{"--source-burst=3", "--reserved-burst=5"}); err != nil {
		t.Fatal(err)
	}
	cli.DocumentEnv(fs, envPrefix)
	if err := cli.ApplyEnv(fs); err != nil {
		t.Fatal(err)
	}
	o := f.apply(podidentity.ServerOptions{ClusterName: "c1", Burst: 8})
	if o.SourceBurst != 3 || o.ReservedBurst != 5 || o.SourceRate != 0.5 || o.ClusterName != "c1" || o.Burst != 8 {
		t.Fatalf("options = %+v", o)
	}

	var d fairnessOptions
	d.register(pflag.NewFlagSet("server", pflag.ContinueOnError))
	if o := d.apply(podidentity.ServerOptions{}); o.SourceBurst != podidentity.DefaultSourceBurst || o.SourceRate != podidentity.DefaultSourceRate || o.ReservedBurst != 0 {
		t.Fatalf("defaults = %+v", o)
	}
	// The server command has them.
	for _, name := range []string{"reserved-burst", "source-rate", "source-burst"} {
		if newServerCommand().Flags().Lookup(name) == nil {
			t.Errorf("server has no --%s", name)
		}
	}
}
