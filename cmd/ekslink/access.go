package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ekslink/ekslink/impersonation/rbac"
)

// newAccessListCommand is "ekslink access list": who reaches the cluster through the connector.
func newAccessListCommand() *cobra.Command {
	var kf eksKubeFlags
	var role string
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the IAM ARNs the connector may impersonate and the bindings that give them rights",
		Long: `Read the connector's impersonation ClusterRole (its users rule's resourceNames: the ARNs the
EKS console can reach the cluster as, through the connector proxy) and every ClusterRoleBinding and
RoleBinding naming one of them as a user. A role that allows every user (no resourceNames) is
reported as unrestricted.`,
		Args: cobra.NoArgs,
	}
	kf.register(cmd.Flags())
	cmd.Flags().StringVar(&role, "impersonation-role", rbac.DefaultImpersonationName, `impersonation ClusterRole (seed 001's YAML names it "eks-connector-service")`)
	addOutputFlag(cmd.Flags(), &output)
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		client, _, err := kf.client(c.Context())
		if err != nil {
			return err
		}
		list, err := rbac.ListAccess(c.Context(), client, rbac.AccessOptions{Name: role})
		if err != nil {
			return err
		}
		if output == "json" {
			return writeJSON(c.OutOrStdout(), list)
		}
		return printAccessList(c.OutOrStdout(), list)
	}
	return cmd
}

func printAccessList(w io.Writer, list *rbac.AccessList) error {
	if list.Unrestricted {
		fmt.Fprintf(w, "warning: ClusterRole %s lets the connector impersonate every user\n", list.Role)
	}
	if len(list.Entries) == 0 {
		_, err := fmt.Fprintf(w, "no ARN may be impersonated through ClusterRole %s\n", list.Role)
		return err
	}
	for _, a := range list.Entries {
		refs := make([]string, len(a.Bindings))
		for i, b := range a.Bindings {
			refs[i] = b.String() + " -> " + b.RoleRef
		}
		if len(refs) == 0 {
			refs = []string{"(no bindings)"}
		}
		if _, err := fmt.Fprintf(w, "%s\t%s\n", a.ARN, strings.Join(refs, ", ")); err != nil {
			return err
		}
	}
	return nil
}

// newAccessRevokeCommand is "ekslink access revoke ARN".
func newAccessRevokeCommand() *cobra.Command {
	var kf eksKubeFlags
	var role string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "revoke ARN",
		Short: "Stop the connector impersonating an IAM ARN and remove it from its bindings",
		Long: `Take the ARN out of the impersonation ClusterRole's resourceNames (optimistic concurrency:
the update carries the resourceVersion read and is retried on conflict; a rule left without names is
removed, never left empty, which would allow every user), then delete the bindings whose only
subject is the ARN and remove it from the others. Re-running changes nothing. --dry-run sends the
same writes with dryRun=All.`,
		Args: cobra.ExactArgs(1),
	}
	kf.register(cmd.Flags())
	cmd.Flags().StringVar(&role, "impersonation-role", rbac.DefaultImpersonationName, "impersonation ClusterRole")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate the writes on the server, store nothing")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		client, _, err := kf.client(c.Context())
		if err != nil {
			return err
		}
		res, err := rbac.Revoke(c.Context(), client, args[0], rbac.AccessOptions{Name: role, DryRun: dryRun})
		if res != nil {
			w := c.OutOrStdout()
			prefix := ""
			if dryRun {
				prefix = "dry run: "
			}
			if res.RoleUpdated {
				fmt.Fprintf(w, "%sremoved %s from ClusterRole %s\n", prefix, args[0], role)
			}
			for _, b := range res.Deleted {
				fmt.Fprintf(w, "%sdeleted %s\n", prefix, b)
			}
			for _, b := range res.Trimmed {
				fmt.Fprintf(w, "%sremoved %s from %s\n", prefix, args[0], b)
			}
			if err == nil && !res.Changed() {
				fmt.Fprintf(w, "%s: nothing to revoke\n", args[0])
			}
			if res.RoleUpdated && res.RoleManagedBy != "" {
				fmt.Fprintf(c.ErrOrStderr(), "note: ClusterRole %s is managed by %s: remove %s where it is rendered too (the chart's grantedARNs, the renderer's or access grant's --arn), or the next install or upgrade puts it back\n", role, res.RoleManagedBy, args[0])
			}
		}
		return err
	}
	return cmd
}
