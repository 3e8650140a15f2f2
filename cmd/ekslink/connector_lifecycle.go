package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/manifest"
	"github.com/ekslink/ekslink/manifest/apply"
	"github.com/ekslink/ekslink/registration"
)

// connectorClusterFlags name the connected cluster in EKS and where its connector runs.
type connectorClusterFlags struct {
	awsf            connectorAWSFlags
	kube            eksKubeFlags
	name, namespace string
	statePrefix     string
	skipCluster     bool
}

func (f *connectorClusterFlags) register(fs *pflag.FlagSet, skipHelp string) {
	f.awsf.register(fs)
	fs.StringVar(&f.name, "name", "", "name of the connected cluster in EKS [env EKS_CLUSTER_NAME]")
	fs.StringVar(&f.kube.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster the connector runs in [env KUBECONFIG]")
	fs.StringVar(&f.kube.context, "context", "", "kubeconfig context")
	fs.StringVar(&f.namespace, "namespace", manifest.DefaultNamespace, "namespace of the connector")
	fs.StringVar(&f.statePrefix, "state-secret-prefix", manifest.DefaultStateSecretPrefix, "prefix of the replicas' state Secrets (<prefix>-<ordinal>)")
	if skipHelp != "" {
		fs.BoolVar(&f.skipCluster, "skip-cluster", false, skipHelp)
	}
}

// clients returns the EKS and SSM clients, and the replicas' state unless --skip-cluster.
func (f *connectorClusterFlags) clients(ctx context.Context) (*eks.Client, *ssm.Client, []registration.Replica, *rest.Config, error) {
	if f.name == "" {
		return nil, nil, nil, nil, errors.New("--name is required")
	}
	cfg, err := f.awsf.config(ctx)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if f.skipCluster {
		return eks.NewFromConfig(cfg), ssm.NewFromConfig(cfg), nil, nil, nil
	}
	rc, _, err := f.kube.restConfig(ctx)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	replicas, err := registration.LoadReplicas(ctx, kc, f.namespace, f.statePrefix)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return eks.NewFromConfig(cfg), ssm.NewFromConfig(cfg), replicas, rc, nil
}

func newConnectorStatusCommand() *cobra.Command {
	var (
		f      connectorClusterFlags
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Say whether the cluster is connected: EKS status, and each replica's SSM managed instance",
		Long: `Answers "is my cluster connected?" with one verdict and its reasons: "connected" (EKS reports
the cluster ACTIVE and every replica's managed instance is Online in SSM), "degraded" (at least one
replica is Online but something needs attention: a replica not registered or not pinging,
recorded orphans, managed instances of the activation that no replica owns) or "not connected".
It reads EKS DescribeCluster, the replicas' state Secrets and SSM DescribeInstanceInformation
(ping status, last ping, agent version). It changes nothing. The exit status is 0 whatever the
verdict; use -o json for scripts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			eksc, ssmc, replicas, _, err := f.clients(ctx)
			if err != nil {
				return err
			}
			st, err := registration.GetConnectorStatus(ctx, eksc, ssmc, f.name, replicas)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	f.register(cmd.Flags(), "do not read the state Secrets (no access to the cluster): judge from the managed instances of the activation alone")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func printStatus(w io.Writer, st *registration.ConnectorStatus) {
	fmt.Fprintf(w, "%s: %s\n", st.Cluster.Name, st.Verdict)
	fmt.Fprintf(w, "EKS: %s", st.Cluster.Status)
	if st.Cluster.Provider != "" {
		fmt.Fprintf(w, ", provider %s, role %s, activation expires %s", st.Cluster.Provider, st.Cluster.RoleARN, st.Cluster.ActivationExpiry.UTC().Format("2006-01-02 15:04 MST"))
	}
	fmt.Fprintln(w)
	for _, r := range st.Replicas {
		fmt.Fprintf(w, "%s: %s", r.Secret, r.Registration)
		if r.InstanceID != "" {
			fmt.Fprintf(w, " %s %s", r.InstanceID, r.PingStatus)
		}
		if !r.LastPing.IsZero() {
			fmt.Fprintf(w, ", last ping %s, agent %s", r.LastPing.UTC().Format("2006-01-02 15:04:05 MST"), r.AgentVersion)
		}
		fmt.Fprintln(w)
	}
	for _, r := range st.Reasons {
		fmt.Fprintf(w, "- %s\n", r)
	}
}

func newConnectorDeregisterCommand() *cobra.Command {
	var (
		f              connectorClusterFlags
		deleteInCluser bool
		output         outputFormat
	)
	cmd := &cobra.Command{
		Use:   "deregister",
		Short: "Deregister the cluster from EKS and every managed instance of its connector from SSM",
		Long: `Deregisters the cluster from EKS (DeregisterCluster, as "aws eks deregister-cluster"), then
every SSM managed instance of it: those of the cluster's activation, those the replicas' state
Secrets hold, and the orphans they record (DeregisterManagedInstance). What is already gone counts
as done, so running it again, or after a failure half-way, finishes the job.

Kubernetes objects are left alone unless --delete-in-cluster is given: then the connector's
objects (as the renderer makes them for --namespace) and its state Secrets are deleted. The
namespace itself is kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if f.skipCluster && deleteInCluser {
				return errors.New("--delete-in-cluster needs the cluster: drop --skip-cluster")
			}
			eksc, ssmc, replicas, rc, err := f.clients(ctx)
			if err != nil {
				return err
			}
			res, err := registration.Deregister(ctx, eksc, ssmc, f.name, replicas)
			if err != nil {
				return err
			}
			deleted := 0
			if deleteInCluser {
				if deleted, err = deleteConnectorObjects(ctx, rc, f, replicas); err != nil {
					return err
				}
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"result": res, "deletedObjects": deleted})
			}
			w := cmd.OutOrStdout()
			if res.ClusterDeregistered {
				fmt.Fprintf(w, "deregistered %s from EKS\n", f.name)
			} else {
				fmt.Fprintf(w, "EKS has no cluster named %s (deregistered already)\n", f.name)
			}
			printInstances(w, res)
			if deleteInCluser {
				fmt.Fprintf(w, "deleted %d connector object(s) in the cluster; namespace %s kept\n", deleted, f.namespace)
			}
			return nil
		},
	}
	f.register(cmd.Flags(), "do not read the state Secrets (no access to the cluster): deregister the instances of the activation alone")
	cmd.Flags().BoolVar(&deleteInCluser, "delete-in-cluster", false, "also delete the connector's objects and state Secrets in the cluster")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

// deleteConnectorObjects deletes what the renderer makes for f.namespace and the state Secrets
// found, the Namespace excepted. The activation id, code and grant given to the renderer decide
// only contents, not names: the code makes it render the activation Secret and the grant the
// impersonation RBAC, so that those are deleted too.
func deleteConnectorObjects(ctx context.Context, rc *rest.Config, f connectorClusterFlags, replicas []registration.Replica) (int, error) {
	objs, err := manifest.RenderConnector(manifest.ConnectorOptions{
		Namespace: f.namespace, Region: "us-east-1", ActivationID: "00000000-0000-4000-8000-000000000000",
		ActivationCode:    "placeholder-for-the-object-names-only",
		StateSecretPrefix: f.statePrefix, GrantedARNs: []string{"arn:aws:iam::000000000000:role/x"},
	})
	if err != nil {
		return 0, err
	}
	us, err := manifest.Unstructured(objs)
	if err != nil {
		return 0, err
	}
	keep := us[:0]
	for _, u := range us {
		if u.GetKind() != "Namespace" {
			keep = append(keep, u)
		}
	}
	for _, r := range replicas {
		s := &unstructured.Unstructured{}
		s.SetAPIVersion("v1")
		s.SetKind("Secret")
		s.SetNamespace(f.namespace)
		s.SetName(r.Secret)
		keep = append(keep, s)
	}
	return apply.Delete(ctx, rc, keep)
}

func printInstances(w io.Writer, res *registration.LifecycleResult) {
	if len(res.Deregistered) == 0 && len(res.AlreadyGone) == 0 {
		fmt.Fprintln(w, "no managed instance to deregister")
	}
	if len(res.Deregistered) > 0 {
		fmt.Fprintf(w, "deregistered managed instances: %s\n", strings.Join(res.Deregistered, ", "))
	}
	if len(res.AlreadyGone) > 0 {
		fmt.Fprintf(w, "already gone in SSM: %s\n", strings.Join(res.AlreadyGone, ", "))
	}
}

func newConnectorCleanupCommand() *cobra.Command {
	var (
		f      connectorClusterFlags
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Deregister the orphaned SSM managed instances of a live connected cluster",
		Long: `Deregisters, on a live connected cluster, the SSM managed instances no replica owns: those the
replicas' state Secrets record as orphans (registrations a crashed or repeated start replaced) and
those of the cluster's activation that no state Secret holds. The instances the replicas own are
never touched. It says what it deregistered and removes those orphans from the state Secrets,
so a second run finds nothing to do.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			eksc, ssmc, replicas, _, err := f.clients(ctx)
			if err != nil {
				return err
			}
			res, err := registration.CleanupOrphans(ctx, eksc, ssmc, f.name, replicas)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			printInstances(cmd.OutOrStdout(), res)
			return nil
		},
	}
	f.register(cmd.Flags(), "")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}
