// Command ekslink is the command-line interface of the ekslink SDK: EKS tokens and kubeconfigs,
// aws-auth editing, console-access RBAC, and self-hosted IRSA (OIDC) tooling.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ekslink/ekslink/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ekslink:", err)
		stop()
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "ekslink",
		Short:         "Connect any Kubernetes cluster to AWS",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newOIDCCommand())    // oidc.go
	root.AddCommand(newEKSCommands()...) // eks.go: token, kubeconfig, aws-auth, access
	cli.AddVersion(root)
	return root
}
