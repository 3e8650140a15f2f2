package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ekslink/ekslink/internal/cli"
	"github.com/ekslink/ekslink/registration"
)

// newConnectorCommand returns "ekslink connector": the EKS Connector's life in AWS (seed 001) —
// IAM set-up, registration, status, deregistration and clean-up. Every flag falls back to
// EKSLINK_<FLAG_NAME> unless its help names other variables; --show-activation and
// --delete-in-cluster must be typed.
func newConnectorCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connector",
		Short: "Set up IAM for, register, check, deregister and clean up an EKS connected cluster",
		Long: `The EKS Connector's life in AWS without the console, the AWS CLI or jq:

  ekslink connector iam         the service-linked role and the agent role (idempotent)
  ekslink connector register    register the cluster with EKS; the activation goes to a file,
                                a manifest or the cluster, never to the terminal unless asked
  ekslink connector status      connected / degraded / not connected, with the reasons
  ekslink connector deregister  EKS and every SSM managed instance; in-cluster objects on request
  ekslink connector cleanup     deregister the orphaned managed instances of a live cluster`,
	}
	cmd.AddCommand(newConnectorIAMCommand(), newConnectorRegisterCommand(), newConnectorStatusCommand(), newConnectorDeregisterCommand(), newConnectorCleanupCommand())
	for _, c := range cmd.Commands() {
		cli.BindEnv(c, "EKSLINK_", "show-activation", "delete-in-cluster")
	}
	return cmd
}

// connectorAWSFlags pick the AWS credentials and region of the connector commands.
type connectorAWSFlags struct{ eksAWSFlags }

func (f *connectorAWSFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.region, "region", "", "AWS region of the connected cluster "+regionDefault)
	fs.StringVar(&f.profile, "profile", "", "shared config profile [env AWS_PROFILE]")
	fs.StringVar(&f.roleARN, "assume-role-arn", "", "IAM role to assume for the AWS calls")
}

func newConnectorIAMCommand() *cobra.Command {
	var (
		awsf    connectorAWSFlags
		spec    registration.IAMSpec
		output  outputFormat
		tags    map[string]string
		skipSLR bool
	)
	cmd := &cobra.Command{
		Use:   "iam",
		Short: "Create or repair the connector's IAM roles (service-linked role, agent role and policy)",
		Long: `Makes the IAM set-up of the EKS Connector exist, as AWS documents it: the service-linked role
of eks-connector.amazonaws.com (AWSServiceRoleForAmazonEKSConnector), and the agent role that SSM
assumes, with its trust policy and the inline policy that lets the SSM agent open its ssmmessages
channels. It reads first and writes only what differs (policies are compared by meaning, not
text), so running it again makes no call that changes anything. Tags the role has besides --tag
are kept. --dry-run makes only the reads and prints each write with its exact documents.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := awsf.config(ctx)
			if err != nil {
				return err
			}
			spec.Tags, spec.SkipServiceLinkedRole = tags, skipSLR
			res, err := registration.EnsureConnectorIAM(ctx, iam.NewFromConfig(cfg), spec)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			printIAMResult(cmd.OutOrStdout(), res, spec.DryRun)
			return nil
		},
	}
	fs := cmd.Flags()
	awsf.register(fs)
	fs.StringVar(&spec.RoleName, "role-name", registration.DefaultAgentRoleName, "the agent role")
	fs.StringVar(&spec.PolicyName, "policy-name", registration.DefaultAgentPolicyName, "the agent role's inline policy")
	fs.StringToStringVar(&tags, "tag", nil, "tags of the agent role, key=value (repeat or separate with commas)")
	fs.BoolVar(&skipSLR, "skip-service-linked-role", false, "leave the service-linked role alone (managed elsewhere)")
	fs.BoolVar(&spec.DryRun, "dry-run", false, "read IAM and print the writes it would make, with their documents; change nothing")
	addOutputFlag(fs, &output)
	return cmd
}

func printIAMResult(w io.Writer, res *registration.IAMResult, dryRun bool) {
	switch {
	case len(res.Calls) == 0:
		fmt.Fprintf(w, "no change: the IAM set-up is in place (agent role %s)\n", res.AgentRoleARN)
		return
	case dryRun:
		fmt.Fprintln(w, "dry run: these IAM calls would be made:")
	}
	for _, c := range res.Calls {
		fmt.Fprintf(w, "%s\n", c.Operation)
		for _, k := range slices.Sorted(maps.Keys(c.Parameters)) {
			v := c.Parameters[k]
			if strings.Contains(v, "\n") {
				fmt.Fprintf(w, "  %s:\n    %s\n", k, strings.ReplaceAll(v, "\n", "\n    "))
				continue
			}
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
	if !dryRun {
		fmt.Fprintf(w, "agent role %s\n", res.AgentRoleARN)
	}
}
