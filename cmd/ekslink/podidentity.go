package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ekslink/ekslink/internal/cli"
	"github.com/ekslink/ekslink/podidentity/association"
)

// newPodIdentityCommand is `ekslink pod-identity`: EKS Pod Identity on clusters that are not EKS.
// Every flag falls back to EKSLINK_POD_IDENTITY_<FLAG_NAME> unless its help names other variables.
func newPodIdentityCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pod-identity",
		Short: "EKS Pod Identity on any cluster: associations of service accounts with IAM roles",
	}
	assoc := &cobra.Command{
		Use:   "association",
		Short: "Create, list and delete the associations the agent's web identity backend reads",
		Long: `Associations say which IAM role the pods of a namespace/serviceAccount get. They are kept in one
ConfigMap (default kube-system/ekslink-pod-identity-associations), one key per service account,
and read by pod-identity agents through a watch. Writes are validated (namespace and service
account names, an IAM role ARN) and use the ConfigMap's resourceVersion, so concurrent edits do
not overwrite each other; they are idempotent. As with EKS, a service account has at most one
association: delete it to associate another role.

The role's trust policy must allow the pods' tokens (see "ekslink oidc trust-policy --audience
pods.eks.amazonaws.com") and the IAM OIDC provider must list pods.eks.amazonaws.com as a client id.`,
	}
	var kubeconfig, kubeContext string
	var opts association.Options
	pf := assoc.PersistentFlags()
	pf.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file [env KUBECONFIG]")
	pf.StringVar(&kubeContext, "context", "", "kubeconfig context")
	pf.StringVar(&opts.Namespace, "configmap-namespace", association.DefaultNamespace, "namespace of the associations ConfigMap")
	pf.StringVar(&opts.Name, "configmap-name", association.DefaultName, "name of the associations ConfigMap")
	store := func() (*association.Store, error) {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if kubeconfig != "" {
			rules.ExplicitPath = kubeconfig
		}
		rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("loading kubeconfig: %w", err)
		}
		c, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return nil, err
		}
		return association.NewStore(c, opts), nil
	}

	var a association.Association
	create := &cobra.Command{
		Use:   "create",
		Short: "Associate a service account with an IAM role (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := store()
			if err != nil {
				return err
			}
			res, err := s.Create(c.Context(), a)
			if err != nil {
				return err
			}
			state := "created"
			if !res.Changed {
				state = "already exists"
			}
			fmt.Fprintf(c.OutOrStdout(), "association %s/%s -> %s: %s (resourceVersion %s)\n", a.Namespace, a.ServiceAccount, a.RoleARN, state, res.ResourceVersion)
			return nil
		},
	}
	create.Flags().StringVar(&a.Namespace, "namespace", "", "namespace of the service account (required)")
	create.Flags().StringVar(&a.ServiceAccount, "service-account", "", "service account name (required)")
	create.Flags().StringVar(&a.RoleARN, "role-arn", "", "IAM role ARN the service account's pods get (required)")

	var output string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the associations (and entries that are not valid associations, on stderr)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := store()
			if err != nil {
				return err
			}
			as, problems, err := s.List(c.Context())
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintf(c.ErrOrStderr(), "warning: entry %q is ignored by the agents: %v\n", p.Key, p.Err)
			}
			switch output {
			case "json":
				if as == nil {
					as = []association.Association{}
				}
				return writeJSON(c.OutOrStdout(), as)
			case "table":
				tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAMESPACE\tSERVICE ACCOUNT\tROLE ARN")
				for _, x := range as {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", x.Namespace, x.ServiceAccount, x.RoleARN)
				}
				return tw.Flush()
			default:
				return fmt.Errorf("--output %q: want table or json", output)
			}
		},
	}
	list.Flags().StringVarP(&output, "output", "o", "table", "table or json")

	var del association.Association
	deleteCmd := &cobra.Command{
		Use:   "delete",
		Short: "Remove a service account's association (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if del.Namespace == "" || del.ServiceAccount == "" {
				return errors.New("--namespace and --service-account are required")
			}
			s, err := store()
			if err != nil {
				return err
			}
			res, err := s.Delete(c.Context(), del.Namespace, del.ServiceAccount)
			if err != nil {
				return err
			}
			state := "deleted"
			if !res.Changed {
				state = "not found, nothing to delete"
			}
			fmt.Fprintf(c.OutOrStdout(), "association %s/%s: %s\n", del.Namespace, del.ServiceAccount, state)
			return nil
		},
	}
	deleteCmd.Flags().StringVar(&del.Namespace, "namespace", "", "namespace of the service account (required)")
	deleteCmd.Flags().StringVar(&del.ServiceAccount, "service-account", "", "service account name (required)")

	assoc.AddCommand(create, list, deleteCmd)
	cmd.AddCommand(assoc)
	cli.BindEnv(cmd, "EKSLINK_POD_IDENTITY_")
	return cmd
}
