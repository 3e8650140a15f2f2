// Command eks-connector is the EKS Connector rebuilt on the ekslink packages: "init" registers the
// cluster's agent with SSM and writes the SSM agent's vault, "proxy" serves the impersonating proxy
// the SSM agent forwards console requests to.
package main

import (
	"context"
	"os"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ekslink/ekslink/internal/cli"
)

// newProxyWithKeySyncCommand is the proxy role (proxy.go) with the rotated-key sync (sync.go) running
// in the same process, so the container that mounts the vault keeps the state Secret current.
// --key-sync=false turns the sync off.
func newProxyWithKeySyncCommand() *cobra.Command {
	var ks keySyncFlags
	return newProxyCommandWithHooks(proxyHooks{
		readyReason: "key sync (the vault's key is not in the state Secret yet)",
		addFlags:    func(fs *pflag.FlagSet) { addKeySyncFlags(fs, &ks) },
		startBackground: func(ctx context.Context, log logr.Logger, reg prometheus.Registerer) (func() error, error) {
			return startKeySync(ctx, log, reg, ks)
		},
	})
}

func main() { os.Exit(cli.Main(newRootCommand())) }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "eks-connector",
		Short:         "The EKS Connector on ekslink",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newInitCommand()) // init.go
	root.AddCommand(newProxyWithKeySyncCommand())
	root.AddCommand(newSyncCommand()) // sync.go: the key sync on its own
	cli.AddVersion(root)
	return root
}
