// Command ekslink is the command-line interface of the ekslink SDK: EKS tokens and kubeconfigs,
// aws-auth editing, console-access RBAC, the EKS Connector's IAM set-up, registration, status and
// clean-up, self-hosted IRSA (OIDC) tooling, and EKS Pod Identity associations for clusters that
// are not EKS.
package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/ekslink/ekslink/internal/cli"
)

func main() { os.Exit(cli.Main(newRootCommand())) }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "ekslink",
		Short:         "Connect any Kubernetes cluster to AWS",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newOIDCCommand())        // oidc.go
	root.AddCommand(newEKSCommands()...)     // eks.go: token, kubeconfig, aws-auth, access
	root.AddCommand(newConnectorCommand())   // connector*.go: iam, register, status, deregister, cleanup
	root.AddCommand(newPodIdentityCommand()) // podidentity.go: associations
	cli.AddVersion(root)
	return root
}
