package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/spf13/cobra"

	"github.com/ekslink/ekslink/internal/atomicfile"
	"github.com/ekslink/ekslink/manifest"
	"github.com/ekslink/ekslink/registration"
)

// connectorManifestFlags are the renderer options register exposes for --manifest-file and --apply.
type connectorManifestFlags struct {
	namespace, image string
	replicas         int32
	grants           []string
}

func newConnectorRegisterCommand() *cobra.Command {
	var (
		awsf                       connectorAWSFlags
		kube                       eksKubeFlags
		spec                       registration.ClusterSpec
		mf                         connectorManifestFlags
		activationFile, manifestTo string
		helmValues                 string
		show, apply                bool
	)
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register the cluster with EKS and deliver its activation to a file, a manifest or the cluster",
		Long: `Registers the cluster with EKS (RegisterCluster, as "aws eks register-cluster") unless EKS
has it already with the same provider and role, in which case nothing is written. The
activation code is a secret: it goes to --activation-file (JSON, mode 0600), to --helm-values
(the values activation.id, activation.code and region of charts/eks-connector, for "helm install
-f", mode 0600), into the activation Secret of the connector manifest written to --manifest-file
(mode 0600), or straight into the cluster with --apply (the connector rendered and applied with
server-side apply), and to the terminal only with --show-activation. It is never logged. One of
them is required, since EKS returns the code only once.

When the cluster was registered before, the code cannot be fetched again: the file of the first
run holds it, and --apply then leaves the activation Secret in the cluster as it is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if spec.Name == "" || spec.RoleARN == "" {
				return errors.New("--name and --agent-role-arn are required")
			}
			if activationFile == "" && helmValues == "" && manifestTo == "" && !apply && !show {
				return errors.New("the activation code would be lost: give --activation-file, --helm-values, --manifest-file, --apply or --show-activation")
			}
			cfg, err := awsf.config(ctx)
			if err != nil {
				return err
			}
			reg, created, err := registration.EnsureCluster(ctx, eks.NewFromConfig(cfg), spec)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if created {
				fmt.Fprintf(out, "registered %s (%s); the activation expires at %s: apply the connector before then\n", spec.Name, reg.ClusterARN, reg.Expiry.UTC().Format("2006-01-02 15:04 MST"))
			} else {
				fmt.Fprintf(out, "no change: %s is registered already (%s); EKS returns the activation code only once\n", spec.Name, reg.ClusterARN)
			}
			if created && activationFile != "" {
				if err := registration.WriteActivationFile(activationFile, spec.Name, reg); err != nil {
					return err
				}
				fmt.Fprintf(out, "activation written to %s\n", activationFile)
			}
			if created && helmValues != "" {
				if err := writeHelmValues(helmValues, reg); err != nil {
					return err
				}
				fmt.Fprintf(out, "Helm values (activation.id, activation.code, region) written to %s\n", helmValues)
			}
			if show && created {
				fmt.Fprintf(out, "activation id: %s\nactivation code: %s\n", reg.Activation.ID, reg.Activation.Code)
			}
			if manifestTo == "" && !apply {
				return nil
			}
			objs, err := manifest.RenderConnector(manifest.ConnectorOptions{
				Namespace: mf.namespace, Replicas: mf.replicas, Region: reg.Region, Image: mf.image,
				ActivationID: reg.Activation.ID, ActivationCode: reg.Activation.Code, GrantedARNs: mf.grants,
			})
			if err != nil {
				return err
			}
			if manifestTo != "" {
				y, err := manifest.YAML(objs)
				if err != nil {
					return err
				}
				if err := atomicfile.Write(manifestTo, y, 0o600); err != nil {
					return fmt.Errorf("writing the manifest: %w", err)
				}
				fmt.Fprintf(out, "connector manifest written to %s\n", manifestTo)
			}
			if apply {
				rc, _, err := kube.restConfig(ctx)
				if err != nil {
					return err
				}
				us, err := manifest.Unstructured(objs)
				if err != nil {
					return err
				}
				if err := manifest.Apply(ctx, rc, us, manifest.ApplyOptions{}); err != nil {
					return err
				}
				fmt.Fprintf(out, "connector applied (%d objects)\n", len(us))
			}
			return nil
		},
	}
	fs := cmd.Flags()
	awsf.register(fs)
	fs.StringVar(&spec.Name, "name", "", "name of the connected cluster in EKS [env EKS_CLUSTER_NAME]")
	fs.StringVar(&spec.Provider, "provider", "OTHER", "connector provider: EKS_ANYWHERE, ANTHOS, GKE, AKS, OPENSHIFT, TANZU, RANCHER, EC2 or OTHER")
	fs.StringVar(&spec.RoleARN, "agent-role-arn", "", "the agent role SSM assumes (\"ekslink connector iam\" prints it)")
	fs.StringToStringVar(&spec.Tags, "tag", nil, "tags of the EKS cluster resource, key=value")
	fs.StringVar(&activationFile, "activation-file", "", "write the activation (id, code, expiry, region) here as JSON, mode 0600")
	fs.StringVar(&helmValues, "helm-values", "", "write the values activation.id, activation.code and region of charts/eks-connector here (helm install -f), mode 0600")
	fs.StringVar(&manifestTo, "manifest-file", "", "write the connector manifest, its activation Secret included, here (mode 0600)")
	fs.BoolVar(&apply, "apply", false, "render the connector and apply it to the cluster of --kubeconfig/--context (server-side apply)")
	fs.BoolVar(&show, "show-activation", false, "print the activation id and code on stdout")
	fs.StringVar(&kube.kubeconfig, "kubeconfig", "", "kubeconfig file for --apply [env KUBECONFIG]")
	fs.StringVar(&kube.context, "context", "", "kubeconfig context for --apply")
	fs.StringVar(&mf.namespace, "namespace", manifest.DefaultNamespace, "namespace of the connector")
	fs.Int32Var(&mf.replicas, "replicas", manifest.DefaultReplicas, "connector replicas (each registers its own managed instance)")
	fs.StringVar(&mf.image, "image", "", "connector image (default: the renderer's)")
	fs.StringSliceVar(&mf.grants, "grant", nil, "IAM ARNs the console may act as through the connector (impersonation RBAC)")
	return cmd
}

// connectorHelmValues are the values of charts/eks-connector the registration decides.
type connectorHelmValues struct {
	Activation struct {
		ID   string `json:"id"`
		Code string `json:"code"`
	} `json:"activation"`
	Region string `json:"region"`
}

// writeHelmValues writes the chart's activation values as JSON (which Helm reads as YAML),
// atomically with mode 0600: the code is a secret.
func writeHelmValues(path string, reg *registration.ClusterRegistration) error {
	var v connectorHelmValues
	v.Activation.ID, v.Activation.Code, v.Region = reg.Activation.ID, reg.Activation.Code, reg.Region
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing the Helm values: %w", err)
	}
	return nil
}
