// Command pod-identity-agent is the EKS Pod Identity agent: "server" serves /v1/credentials on the
// link-local agent addresses (see package podidentity), "init" creates those addresses on
// the node (Linux, netlink).
package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/ekslink/ekslink/internal/cli"
)

func main() { os.Exit(cli.Main(newRootCommand())) }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "pod-identity-agent",
		Short: "EKS Pod Identity agent: node-local AWS credentials for pods",
		Long: `EKS Pod Identity agent: pods' AWS SDKs send their projected service account token to
http://169.254.170.23/v1/credentials (or [fd00:ec2::23]); the agent exchanges it through the EKS Auth
API (AssumeRoleForPodIdentity) and caches the answer.

Every flag can also be set with the environment variable shown in its description.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServerCommand(), newInitCommand())
	cli.AddVersion(root)
	return root
}

// envPrefix is the prefix of every flag's environment variable: --cache-size falls back to
// POD_IDENTITY_CACHE_SIZE (see internal/cli). Flags with other names (EKS_CLUSTER_NAME) list them in
// their help.
const envPrefix = "POD_IDENTITY_"
