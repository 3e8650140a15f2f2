package main

import (
	"github.com/spf13/pflag"

	"github.com/ekslink/ekslink/podidentity"
)

// fairnessOptions are the flags of the per-source budget and the reserve (docs/podidentity.md,
// "Fairness"); zero values mean the podidentity defaults.
type fairnessOptions struct {
	reservedBurst int
	sourceRate    float64
	sourceBurst   int
}

func (f *fairnessOptions) register(fs *pflag.FlagSet) {
	fs.IntVar(&f.reservedBurst, "reserved-burst", 0, "part of --burst that new tokens never spend, kept for tokens EKS Auth accepted before and for refreshes close to expiry (0: a quarter of --burst)")
	fs.Float64Var(&f.sourceRate, "source-rate", podidentity.DefaultSourceRate, "EKS Auth calls per second for new tokens one client address may cause")
	fs.IntVar(&f.sourceBurst, "source-burst", podidentity.DefaultSourceBurst, "burst of --source-rate (host-network pods share the node's address)")
}

// apply sets the fairness fields of o and returns it.
func (f *fairnessOptions) apply(o podidentity.ServerOptions) podidentity.ServerOptions {
	o.ReservedBurst, o.SourceRate, o.SourceBurst = f.reservedBurst, f.sourceRate, f.sourceBurst
	return o
}
