package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ekslink/ekslink/eksauth"
	"github.com/ekslink/ekslink/eksauth/awsauth"
)

// eksAccessEntries describes --cluster-name and returns its access entry helpers; the error
// says when the cluster's authentication mode has no access entries.
func eksAccessEntries(ctx context.Context, f *eksAWSFlags, name string) (*eksauth.AccessEntries, *eksauth.Cluster, error) {
	if name == "" {
		return nil, nil, errors.New("--cluster-name is required")
	}
	cfg, err := f.config(ctx)
	if err != nil {
		return nil, nil, err
	}
	client := eks.NewFromConfig(cfg)
	cluster, err := eksauth.DescribeCluster(ctx, cfg, name, eksauth.ClusterOptions{EKS: client})
	if err != nil {
		return nil, nil, err
	}
	ae, err := eksauth.NewAccessEntries(client, cluster)
	return ae, cluster, err
}

// newAccessEntriesCommand is "ekslink access entries list|revoke".
func newAccessEntriesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "entries", Short: "List and revoke EKS access entries (clusters in API or API_AND_CONFIG_MAP mode)"}
	var aws eksAWSFlags
	var cluster, policy string
	var output outputFormat
	var force bool
	aws.register(cmd.PersistentFlags())
	cmd.PersistentFlags().StringVar(&cluster, "cluster-name", "", "EKS cluster name")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the access entries with their type, username, groups and associated policies",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ae, _, err := eksAccessEntries(c.Context(), &aws, cluster)
			if err != nil {
				return err
			}
			entries, err := ae.List(c.Context())
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			if output == "json" {
				return writeJSON(w, entries)
			}
			for _, e := range entries {
				var pols []string
				for _, p := range e.Policies {
					s := p.PolicyARN[strings.LastIndexByte(p.PolicyARN, '/')+1:]
					if len(p.Namespaces) > 0 {
						s += "(" + strings.Join(p.Namespaces, ",") + ")"
					}
					pols = append(pols, s)
				}
				fmt.Fprintf(w, "%s\t%s\tusername=%s\tgroups=%s\tpolicies=%s\n", e.PrincipalARN, e.Type, e.Username, strings.Join(e.Groups, ","), strings.Join(pols, ","))
			}
			return nil
		},
	}
	addOutputFlag(list.Flags(), &output)
	revoke := &cobra.Command{
		Use:   "revoke PRINCIPAL_ARN",
		Short: "Disassociate the principal's access policies and delete its access entry (--policy: only that policy)",
		Long: `Disassociate every access policy of the principal (DisassociateAccessPolicy) and delete its access
entry (DeleteAccessEntry). With --policy only that policy is disassociated. An entry that does not
exist is already revoked: a re-run writes nothing. Entries of node types (EC2_LINUX, FARGATE_LINUX,
...) are refused without --force, since the nodes using the role could no longer join.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ae, _, err := eksAccessEntries(c.Context(), &aws, cluster)
			if err != nil {
				return err
			}
			res, err := ae.Revoke(c.Context(), args[0], eksauth.AccessRevokeOptions{Policy: policy, Force: force})
			if res != nil {
				w := c.OutOrStdout()
				for _, p := range res.Disassociated {
					fmt.Fprintf(w, "disassociated %s from %s\n", p, args[0])
				}
				if res.Deleted {
					fmt.Fprintf(w, "deleted the access entry of %s\n", args[0])
				}
				if err == nil && !res.Changed() {
					fmt.Fprintf(w, "%s: nothing to revoke\n", args[0])
				}
			}
			return err
		},
	}
	revoke.Flags().StringVar(&policy, "policy", "", "disassociate only this access policy (name such as AmazonEKSViewPolicy, or ARN) and keep the entry")
	revoke.Flags().BoolVar(&force, "force", false, "allow deleting an access entry of a node type")
	cmd.AddCommand(list, revoke)
	return cmd
}

// newAccessMigrateCommand is "ekslink access migrate".
func newAccessMigrateCommand() *cobra.Command {
	var kf eksKubeFlags
	var apply bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Plan (default) or --apply the access entries equivalent to the aws-auth ConfigMap",
		Long: `Read kube-system/aws-auth and the cluster's access entries and print the entries and policy
associations equivalent to each mapping, as "Migrating existing aws-auth ConfigMap entries to access
entries" in the Amazon EKS User Guide describes: STANDARD entries with the mapping's username and
groups, system:masters as an AmazonEKSClusterAdminPolicy association, node roles as EC2_LINUX
(EC2_WINDOWS, FARGATE_LINUX) entries. Mappings that cannot be migrated whole (other system: groups,
mapAccounts, session ARNs) are listed and left out. Nothing is written without --apply; --apply
creates the missing entries and associations, skips equal ones and never changes an entry that
differs (it already takes precedence over aws-auth). aws-auth itself is not changed: remove its
entries once the access entries work, then switch the cluster to the API authentication mode.

aws-auth is read through --kubeconfig/--context when either is given, otherwise from the cluster
reached directly with an EKS token.`,
		Args: cobra.NoArgs,
	}
	kf.register(cmd.Flags())
	cmd.Flags().BoolVar(&apply, "apply", false, "create the planned access entries and associations")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		if kf.cluster == "" {
			return errors.New("--cluster-name is required")
		}
		cfg, err := kf.aws.config(c.Context())
		if err != nil {
			return err
		}
		client := eks.NewFromConfig(cfg)
		cluster, err := eksauth.DescribeCluster(c.Context(), cfg, kf.cluster, eksauth.ClusterOptions{EKS: client})
		if err != nil {
			return err
		}
		var rc *rest.Config
		if c.Flags().Changed("kubeconfig") || c.Flags().Changed("context") {
			rc, err = kf.kubeconfigRESTConfig()
		} else {
			rc, _, err = kf.restConfig(c.Context())
		}
		if err != nil {
			return err
		}
		kube, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return err
		}
		authCfg, err := awsauth.NewEditor(kube, awsauth.Options{}).Get(c.Context())
		if err != nil {
			return fmt.Errorf("reading aws-auth (a list that cannot be parsed must be fixed first: migrating part of it would lose mappings): %w", err)
		}
		w := c.OutOrStdout()
		ae, err := eksauth.NewAccessEntries(client, cluster)
		if errors.Is(err, eksauth.ErrAccessEntriesUnsupported) {
			plan := eksauth.PlanMigration(authCfg, nil, eksPartition(cluster))
			fmt.Fprint(w, plan.Diff())
			if apply {
				return err
			}
			fmt.Fprintf(w, "%s\nSwitch it to API_AND_CONFIG_MAP (aws eks update-cluster-config --name %s --access-config authenticationMode=API_AND_CONFIG_MAP), then run with --apply.\n", cluster.AuthModeNotice(), cluster.Name)
			return nil
		}
		if err != nil {
			return err
		}
		plan, err := ae.Migrate(c.Context(), authCfg, eksauth.MigrateOptions{Apply: apply})
		if plan != nil {
			fmt.Fprint(w, plan.Diff())
		}
		if err != nil {
			return err
		}
		switch {
		case !plan.Pending():
			fmt.Fprintln(w, "access entries: nothing to migrate")
		case apply:
			fmt.Fprintln(w, "access entries: created")
		default:
			fmt.Fprintln(w, "access entries: dry run, nothing written (run with --apply)")
		}
		fmt.Fprintln(c.ErrOrStderr(), cluster.AuthModeNotice())
		return nil
	}
	return cmd
}

// eksPartition is the cluster's partition, from its ARN.
func eksPartition(c *eksauth.Cluster) string {
	if parts := strings.SplitN(c.ARN, ":", 3); len(parts) == 3 && parts[1] != "" {
		return parts[1]
	}
	return "aws"
}

// kubeconfigRESTConfig is the kubeconfig's API server even when --cluster-name is set.
func (f *eksKubeFlags) kubeconfigRESTConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if f.kubeconfig != "" {
		rules.ExplicitPath = f.kubeconfig
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	return rc, nil
}
