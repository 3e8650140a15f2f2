// Command pod-identity-webhook is a drop-in for aws/amazon-eks-pod-identity-webhook: the mutating
// admission webhook that gives pods AWS credentials through IRSA or EKS Pod Identity (see package
// webhook). It takes the upstream's flags with their meanings, so an existing Deployment can switch
// images. Like the upstream, it reads no environment variables for its flags (and the natural
// prefix, POD_IDENTITY_WEBHOOK_, is taken: Kubernetes sets POD_IDENTITY_WEBHOOK_PORT=tcp://... and
// friends in every pod of the namespace of a Service named pod-identity-webhook).
package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/ekslink/ekslink/internal/cli"
)

func main() { os.Exit(cli.Main(newRootCommand())) }

func newRootCommand() *cobra.Command {
	o := &options{}
	root := &cobra.Command{
		Use:   "pod-identity-webhook",
		Short: "Mutating admission webhook: AWS credentials for pods (IRSA and EKS Pod Identity)",
		Long: `pod-identity-webhook mutates pods whose service account has an eks.amazonaws.com/role-arn
annotation (or an entry in the pod-identity-webhook ConfigMap) for IRSA, and pods whose service
account the identities file lists for EKS Pod Identity container credentials: the AWS_* variables,
a projected service account token volume and its mount, exactly as
aws/amazon-eks-pod-identity-webhook does, with the same flags.

It serves /mutate, /healthz and /readyz over TLS on --port, and /metrics, /healthz and /readyz over
plain HTTP on --metrics-port. Register it with failurePolicy: Ignore; it never refuses a pod.
The certificate comes from --tls-cert/--tls-key (reloaded on change), or, with --cert-secret and
--webhook-config-name, is its own: kept in that Secret, rotated, and its CA set as the caBundle.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), cli.NewLogger(cmd.ErrOrStderr(), o.verbosity), o)
		},
	}
	o.addFlags(root.Flags())
	cli.AddVersion(root)
	return root
}
