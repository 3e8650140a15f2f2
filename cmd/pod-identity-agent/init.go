package main

import (
	"github.com/spf13/cobra"

	"github.com/ekslink/ekslink/internal/cli"
	"github.com/ekslink/ekslink/manifest/flagname"
)

type initOptions struct {
	linkName  string
	addresses []string
	verbosity verbosity
}

func newInitCommand() *cobra.Command {
	o := &initOptions{}
	cmd := &cobra.Command{
		Use:     "init",
		Aliases: []string{"initialize"},
		Short:   "Create the agent's link-local addresses on this node (Linux; needs NET_ADMIN)",
		Long: `Create a dummy link (default pod-id-link0) holding the agent addresses 169.254.170.23/32 and
fd00:ec2::23/128, and bring it up (a bridge without ports when the kernel has no dummy driver).
Idempotent: existing links and addresses are kept. An address
family the node does not support (IPv6 disabled) is logged and skipped; init fails only if no
address could be configured. Linux only. "initialize" is the upstream agent's name of this command.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInit(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.linkName, "link-name", "pod-id-link0", "dummy link holding the addresses")
	fs.StringSliceVar(&o.addresses, flagname.Addresses, []string{"169.254.170.23/32", "fd00:ec2::23/128"}, "comma-separated CIDRs to add to the link")
	fs.SetNormalizeFunc(aliasNormalizer)
	addVerbosityFlag(fs, &o.verbosity)
	cli.BindEnv(cmd, envPrefix)
	return cmd
}
