package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/ekslink/ekslink/eksauth"
	"github.com/ekslink/ekslink/eksauth/awsauth"
	"github.com/ekslink/ekslink/impersonation/rbac"
	"github.com/ekslink/ekslink/internal/cli"
)

// newEKSCommands returns the EKS commands: token, kubeconfig, aws-auth, access. Every flag falls
// back to EKSLINK_<FLAG_NAME> unless its help names other variables; the guards --force and
// --allow-rewrite must be typed.
func newEKSCommands() []*cobra.Command {
	cmds := []*cobra.Command{newEKSTokenCommand(), newEKSKubeconfigCommand(), newEKSAWSAuthCommand(), newEKSAccessCommand()}
	for _, c := range cmds {
		cli.BindEnv(c, "EKSLINK_", "force", "allow-rewrite")
	}
	return cmds
}

func eksLogger(cmd *cobra.Command) logr.Logger { return cli.NewLogger(cmd.ErrOrStderr(), 0) }

// regionDefault ends the help of every --region of the shared AWS flags (eksAWSFlags,
// connectorAWSFlags): the flag, else the variables, else the profile's region, the order in which
// the AWS CLI resolves it; the help's "[env ...]" is also the binding (internal/cli).
const regionDefault = "(default: the region of the profile, --profile or AWS_PROFILE, in the shared config file, as the AWS CLI resolves it; there is no built-in default) [env AWS_REGION, AWS_DEFAULT_REGION]"

// eksAWSFlags are the flags that pick AWS credentials and the STS endpoint.
type eksAWSFlags struct {
	region, profile, roleARN string
	fips, dualStack, global  bool
}

func (f *eksAWSFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.region, "region", "", "AWS region of the cluster "+regionDefault)
	fs.StringVar(&f.profile, "profile", "", "shared config profile [env AWS_PROFILE]")
	fs.StringVar(&f.roleARN, "role-arn", "", "IAM role to assume before signing")
	fs.BoolVar(&f.fips, "fips", false, "use the FIPS STS endpoint")
	fs.BoolVar(&f.dualStack, "dual-stack", false, "use the dual-stack STS endpoint")
	fs.BoolVar(&f.global, "global-endpoint", false, "use the legacy global STS endpoint sts.amazonaws.com (aws partition only)")
}

func (f *eksAWSFlags) config(ctx context.Context) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if f.region != "" {
		opts = append(opts, awsconfig.WithRegion(f.region))
	}
	if f.profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(f.profile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		profile := f.profile
		if profile == "" {
			profile = "default"
		}
		return aws.Config{}, fmt.Errorf("no AWS region: pass --region, set AWS_REGION, or set region in profile %q of the shared config file (aws configure set region <region>); ekslink has no default region", profile)
	}
	f.region = cfg.Region // the token and kubeconfig commands name the region they resolved
	if f.roleARN != "" {
		// The assume-role call goes to the regional STS endpoint of --region.
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), f.roleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "ekslink"
		}))
	}
	return cfg, nil
}

func (f *eksAWSFlags) tokenOptions(o *eksauth.TokenOptions) {
	*o = eksauth.TokenOptions{Region: f.region, FIPS: f.fips, DualStack: f.dualStack, GlobalEndpoint: f.global}
}

func newEKSTokenCommand() *cobra.Command {
	var aws eksAWSFlags
	var cluster string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print an EKS bearer token as an ExecCredential (kubectl exec plugin)",
		Long: `Print an ExecCredential holding a k8s-aws-v1 token for the cluster, as kubectl's exec
plugin protocol expects. The apiVersion follows KUBERNETES_EXEC_INFO (v1 or v1beta1; v1beta1 when
unset). The token expires 14 minutes after signing or when the AWS credentials do, if earlier.`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVar(&cluster, "cluster-name", "", "cluster name (or, for local clusters on Outposts, the cluster ID)")
	aws.register(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		version, err := eksauth.ExecCredentialVersion(os.Getenv)
		if err != nil {
			return err
		}
		cfg, err := aws.config(cmd.Context())
		if err != nil {
			return err
		}
		gen, err := eksauth.NewTokenGenerator(cfg, aws.tokenOptions)
		if err != nil {
			return err
		}
		tok, err := gen.Token(cmd.Context(), cluster)
		if err != nil {
			return err
		}
		out, err := eksauth.ExecCredential(tok, version)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(cmd.OutOrStdout(), string(out))
		return err
	}
	return cmd
}

func newEKSKubeconfigCommand() *cobra.Command {
	var aws eksAWSFlags
	var cluster, output, command, contextName, alias string
	var temp, merge bool
	var lockTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Write or merge a kubeconfig for an EKS cluster (DescribeCluster + exec stanza)",
		Long: `Describe the cluster and write a kubeconfig whose user runs "ekslink token" (interactiveMode
Never). By default the kubeconfig is printed; --temp writes it to a new private temporary file whose
path is printed.

--merge updates a kubeconfig as "aws eks update-kubeconfig" does: the cluster and user entries are
named after the cluster ARN, the context after --alias (default the cluster ARN), current-context is
set to it, and every other cluster, user and context is kept. The file is --output, or else the
first file of $KUBECONFIG that already has the cluster, the first file of $KUBECONFIG, or
~/.kube/config. It is locked as kubectl locks it (<file>.lock), copied to <file>.bak, and replaced
atomically with mode 0600; running it again writes nothing. --output alone implies --merge.`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVar(&cluster, "cluster-name", "", "cluster name")
	cmd.Flags().StringVarP(&output, "output", "o", "", "kubeconfig file to merge into (mode 0600) [env EKSLINK_KUBECONFIG_OUTPUT]")
	cmd.Flags().BoolVar(&merge, "merge", false, "merge into --output, or the kubeconfig kubectl reads ($KUBECONFIG, ~/.kube/config)")
	cmd.Flags().StringVar(&alias, "alias", "", "context name when merging (default: the cluster ARN)")
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", 10*time.Second, "how long to wait for another writer's <file>.lock when merging")
	cmd.Flags().BoolVar(&temp, "temp", false, "write to a new private temporary file and print its path")
	cmd.Flags().StringVar(&command, "exec-command", "ekslink", "exec plugin command written into the kubeconfig")
	cmd.Flags().StringVar(&contextName, "context-name", "", "context, cluster and user name of a printed or --temp kubeconfig (default: the cluster ARN)")
	aws.register(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if cluster == "" {
			return errors.New("--cluster-name is required")
		}
		cfg, err := aws.config(cmd.Context())
		if err != nil {
			return err
		}
		c, err := eksauth.DescribeCluster(cmd.Context(), cfg, cluster, eksauth.ClusterOptions{})
		if err != nil {
			return err
		}
		var extra []string
		if aws.fips {
			extra = append(extra, "--fips")
		}
		if aws.dualStack {
			extra = append(extra, "--dual-stack")
		}
		if aws.global {
			extra = append(extra, "--global-endpoint")
		}
		kopts := eksauth.KubeconfigOptions{Command: command, Profile: aws.profile, RoleARN: aws.roleARN, Context: contextName, ExtraArgs: extra}
		eksLogger(cmd).Info(c.AuthModeNotice(), "cluster", c.Name)
		if merge || output != "" {
			if temp {
				return errors.New("--temp writes a new file: it cannot be combined with --merge or --output")
			}
			res, err := eksauth.MergeKubeconfig(c, eksauth.MergeOptions{Path: output, Alias: alias, Kubeconfig: kopts, LockTimeout: lockTimeout})
			if err != nil {
				return err
			}
			switch {
			case !res.Changed:
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Context %s in %s is up to date\n", res.Context, res.Path)
			case res.Added:
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Added new context %s to %s\n", res.Context, res.Path)
			default:
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Updated context %s in %s (previous file: %s)\n", res.Context, res.Path, res.Backup)
			}
			return err
		}
		data, err := eksauth.Kubeconfig(c, kopts)
		if err != nil {
			return err
		}
		switch {
		case temp:
			path, _, err := eksauth.WriteTempKubeconfig("", data)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), path)
			return err
		default:
			_, err = cmd.OutOrStdout().Write(data)
			return err
		}
	}
	return cmd
}

// eksKubeFlags pick the Kubernetes API server: a kubeconfig, or an EKS cluster reached directly.
type eksKubeFlags struct {
	kubeconfig, context, cluster string
	aws                          eksAWSFlags
}

func (f *eksKubeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file [env KUBECONFIG]")
	fs.StringVar(&f.context, "context", "", "kubeconfig context")
	fs.StringVar(&f.cluster, "cluster-name", "", "reach this EKS cluster directly (DescribeCluster + token) instead of using a kubeconfig")
	f.aws.register(fs)
}

func (f *eksKubeFlags) client(ctx context.Context) (kubernetes.Interface, *eksauth.Cluster, error) {
	rc, cluster, err := f.restConfig(ctx)
	if err != nil {
		return nil, nil, err
	}
	c, err := kubernetes.NewForConfig(rc)
	return c, cluster, err
}

// restConfig is the API server configuration the flags select: an EKS cluster reached with a
// token (--cluster-name) or a kubeconfig context.
func (f *eksKubeFlags) restConfig(ctx context.Context) (*rest.Config, *eksauth.Cluster, error) {
	var rc *rest.Config
	var cluster *eksauth.Cluster
	if f.cluster != "" {
		cfg, err := f.aws.config(ctx)
		if err != nil {
			return nil, nil, err
		}
		if cluster, err = eksauth.DescribeCluster(ctx, cfg, f.cluster, eksauth.ClusterOptions{}); err != nil {
			return nil, nil, err
		}
		gen, err := eksauth.NewTokenGenerator(cfg, f.aws.tokenOptions)
		if err != nil {
			return nil, nil, err
		}
		rc = cluster.RESTConfig(eksauth.NewTokenSource(gen, cluster.TokenCluster(), eksauth.TokenSourceOptions{}))
	} else {
		var err error
		if rc, err = f.kubeconfigRESTConfig(); err != nil { // accessentries.go
			return nil, nil, err
		}
	}
	return rc, cluster, nil
}

func newEKSAWSAuthCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "aws-auth",
		Short: "Read and safely edit the kube-system/aws-auth ConfigMap",
		Long: `Edit kube-system/aws-auth with a typed model: entries are matched by canonical ARN, edits are
idempotent and use optimistic concurrency, invalid results are refused, and removing the last
system:masters mapping or a node role needs --force. Entries an edit does not change are kept byte
for byte (comments too); an edit that would rewrite them (a list in flow style, with anchors or
uneven indentation) is refused with the diff unless --allow-rewrite is given. Problems that were
already there (a role path, an unquoted number) are warnings and never block an edit, a removal
least of all. A list that cannot be parsed is reported and left alone; the other lists can still be
edited.`,
	}
	var kf eksKubeFlags
	var dryRun, force, allowRewrite bool
	var username string
	var groups []string
	kf.register(cmd.PersistentFlags())

	editor := func(c *cobra.Command) (*awsauth.Editor, error) {
		client, cluster, err := kf.client(c.Context())
		if err != nil {
			return nil, err
		}
		if cluster != nil && cluster.AWSAuthIgnored() {
			eksLogger(c).Info("warning: "+cluster.AuthModeNotice(), "cluster", cluster.Name)
		}
		return awsauth.NewEditor(client, awsauth.Options{Logger: eksLogger(c)}), nil
	}
	report := func(c *cobra.Command, res *awsauth.Result, err error) error {
		if res != nil {
			for _, w := range res.Warnings {
				fmt.Fprintln(c.ErrOrStderr(), "warning:", w)
			}
			switch {
			case res.Diff != "" && err != nil:
				// The refused change goes to stderr: stdout carries nothing on failure.
				fmt.Fprint(c.ErrOrStderr(), res.Diff)
			case res.Diff != "" && res.DryRun:
				fmt.Fprint(c.OutOrStdout(), res.Diff)
			}
		}
		if err != nil {
			return err
		}
		switch {
		case !res.Changed:
			fmt.Fprintln(c.OutOrStdout(), "aws-auth: no change")
		case res.DryRun:
			fmt.Fprintln(c.OutOrStdout(), "aws-auth: dry run, nothing written")
		default:
			fmt.Fprintf(c.OutOrStdout(), "aws-auth: updated (resourceVersion %s)\n", res.ResourceVersion)
		}
		return nil
	}
	mutating := func(c *cobra.Command) {
		c.Flags().BoolVar(&dryRun, "dry-run", false, "print the diff, write nothing")
		c.Flags().BoolVar(&force, "force", false, "allow removing the last system:masters mapping or a node role mapping")
		c.Flags().BoolVar(&allowRewrite, "allow-rewrite", false, "accept rewriting entries the edit does not change when the list's layout cannot be edited in place (their meaning is still checked)")
	}
	identity := func(c *cobra.Command) {
		c.Flags().StringVar(&username, "username", "", "Kubernetes username (templates: {{SessionName}}, {{AccountID}}, ...)")
		c.Flags().StringSliceVar(&groups, "group", nil, "Kubernetes group (repeatable)")
	}

	get := &cobra.Command{
		Use: "get", Short: "Print the parsed mappings as YAML", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ed, err := editor(c)
			if err != nil {
				return err
			}
			cfg, err := ed.Get(c.Context())
			if err != nil {
				return err
			}
			out, err := yaml.Marshal(eksAWSAuthView(cfg))
			if err != nil {
				return err
			}
			_, err = c.OutOrStdout().Write(out)
			for _, p := range cfg.Problems() {
				fmt.Fprintln(c.ErrOrStderr(), "problem:", p)
			}
			return err
		},
	}
	addRole := &cobra.Command{
		Use: "add-role ROLE_ARN", Short: "Add or update a role mapping", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ed, err := editor(c)
			if err != nil {
				return err
			}
			res, err := ed.UpsertRole(c.Context(), awsauth.RoleMapping{RoleARN: args[0], Username: username, Groups: groups}, awsauth.EditOptions{DryRun: dryRun, Force: force, AllowRewrite: allowRewrite})
			return report(c, res, err)
		},
	}
	addUser := &cobra.Command{
		Use: "add-user USER_ARN", Short: "Add or update a user mapping", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ed, err := editor(c)
			if err != nil {
				return err
			}
			res, err := ed.UpsertUser(c.Context(), awsauth.UserMapping{UserARN: args[0], Username: username, Groups: groups}, awsauth.EditOptions{DryRun: dryRun, Force: force, AllowRewrite: allowRewrite})
			return report(c, res, err)
		},
	}
	remove := &cobra.Command{
		Use: "remove ARN", Short: "Remove the mappings of a role or user", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ed, err := editor(c)
			if err != nil {
				return err
			}
			res, err := ed.Remove(c.Context(), args[0], awsauth.EditOptions{DryRun: dryRun, Force: force, AllowRewrite: allowRewrite})
			return report(c, res, err)
		},
	}
	var removeDiff bool
	diff := &cobra.Command{
		Use: "diff ARN", Short: "Show what add-role/add-user (or --remove) would change, without writing", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ed, err := editor(c)
			if err != nil {
				return err
			}
			opts := awsauth.EditOptions{DryRun: true, Force: force, AllowRewrite: allowRewrite}
			var res *awsauth.Result
			switch {
			case removeDiff:
				res, err = ed.Remove(c.Context(), args[0], opts)
			case strings.Contains(args[0], ":user/") || strings.HasSuffix(args[0], ":root"):
				res, err = ed.UpsertUser(c.Context(), awsauth.UserMapping{UserARN: args[0], Username: username, Groups: groups}, opts)
			default:
				res, err = ed.UpsertRole(c.Context(), awsauth.RoleMapping{RoleARN: args[0], Username: username, Groups: groups}, opts)
			}
			if res != nil && err == nil {
				res.DryRun = true
			}
			return report(c, res, err)
		},
	}
	diff.Flags().BoolVar(&removeDiff, "remove", false, "diff a removal instead of an upsert")
	diff.Flags().BoolVar(&force, "force", false, "allow removing the last system:masters mapping or a node role mapping")
	diff.Flags().BoolVar(&allowRewrite, "allow-rewrite", false, "show the rewrite of a list whose layout cannot be edited in place instead of refusing")
	for _, c := range []*cobra.Command{addRole, addUser, remove} {
		mutating(c)
	}
	for _, c := range []*cobra.Command{addRole, addUser, diff} {
		identity(c)
	}
	cmd.AddCommand(get, addRole, addUser, remove, diff)
	return cmd
}

type eksAWSAuthMapping struct {
	ARN      string   `json:"arn"`
	Username string   `json:"username"`
	Groups   []string `json:"groups,omitempty"`
}

func eksAWSAuthView(c *awsauth.Config) map[string]any {
	var roles, users []eksAWSAuthMapping
	for _, r := range c.Roles {
		roles = append(roles, eksAWSAuthMapping{r.RoleARN, r.Username, r.Groups})
	}
	for _, u := range c.Users {
		users = append(users, eksAWSAuthMapping{u.UserARN, u.Username, u.Groups})
	}
	return map[string]any{"mapRoles": roles, "mapUsers": users, "mapAccounts": c.Accounts}
}

func newEKSAccessCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "access", Short: "Console access for IAM principals through the EKS connector"}
	var kf eksKubeFlags
	var arns, namespaces []string
	var connNS, connSA, name string
	var apply, entries, userExtras bool
	var policy string
	grant := &cobra.Command{
		Use:   "grant",
		Short: "Render (or --apply) read-only console RBAC and the connector's impersonation ClusterRole",
		Long: `Render the ClusterRoles and bindings that give the IAM ARNs read-only console access (all
namespaces, or only --namespace ones; Secrets are never readable) and the ClusterRole that lets the
connector's service account impersonate exactly these ARNs (the RBAC AWS documents for the EKS
Connector; --user-extras also grants the user extras a "eks-connector proxy --user-extras" sends).
Prints YAML unless --apply is given.
With --access-entry and --cluster-name, also create EKS access entries (clusters in API modes).`,
		Args: cobra.NoArgs,
	}
	grant.Flags().StringSliceVar(&arns, "arn", nil, "IAM principal ARN to grant (repeatable) [env EKSLINK_ACCESS_ARNS]")
	grant.Flags().StringSliceVar(&namespaces, "namespace", nil, "restrict namespaced read access to this namespace (repeatable) [env EKSLINK_ACCESS_NAMESPACES]")
	grant.Flags().StringVar(&connNS, "connector-namespace", rbac.DefaultConnectorNamespace, "namespace of the connector's service account")
	grant.Flags().StringVar(&connSA, "connector-service-account", rbac.DefaultConnectorServiceAccount, "connector's service account")
	grant.Flags().StringVar(&name, "name", rbac.DefaultConsoleName, "base name of the console RBAC objects")
	grant.Flags().BoolVar(&apply, "apply", false, "apply to the cluster (server-side apply) instead of printing")
	grant.Flags().BoolVar(&userExtras, "user-extras", false, "also grant impersonate on userextras/arn and userextras/sessionname (for a proxy run with --user-extras)")
	grant.Flags().BoolVar(&entries, "access-entry", false, "also create EKS access entries for the ARNs (needs --cluster-name)")
	grant.Flags().StringVar(&policy, "access-policy", eksauth.AccessPolicyView, "access policy associated with --access-entry")
	kf.register(grant.Flags())
	grant.RunE = func(c *cobra.Command, _ []string) error {
		console, err := rbac.ConsoleRBAC(rbac.ConsoleOptions{ARNs: arns, Namespaces: namespaces, Name: name})
		if err != nil {
			return err
		}
		imp, err := rbac.ImpersonationClusterRole(rbac.ImpersonationOptions{ARNs: arns, Namespace: connNS, ServiceAccount: connSA, UserExtras: userExtras})
		if err != nil {
			return err
		}
		objs := console.Merge(imp)
		if !apply && !entries {
			out, err := objs.YAML()
			if err != nil {
				return err
			}
			_, err = c.OutOrStdout().Write(out)
			return err
		}
		rc, cluster, err := kf.restConfig(c.Context())
		if err != nil {
			return err
		}
		if apply {
			if err := rbac.Apply(c.Context(), rc, objs, rbac.ApplyOptions{}); err != nil {
				return err
			}
			eksLogger(c).Info("console access applied", "arns", len(arns), "namespaces", namespaces)
		}
		if entries {
			if cluster == nil {
				return errors.New("--access-entry needs --cluster-name")
			}
			cfg, err := kf.aws.config(c.Context())
			if err != nil {
				return err
			}
			ae, err := eksauth.NewAccessEntries(eks.NewFromConfig(cfg), cluster)
			if err != nil {
				return err
			}
			for _, a := range arns {
				if err := ae.Grant(c.Context(), eksauth.AccessGrant{PrincipalARN: a, Policy: policy, Namespaces: namespaces}); err != nil {
					return err
				}
			}
		}
		return nil
	}
	cmd.AddCommand(grant, newAccessListCommand(), newAccessRevokeCommand(), // access.go
		newAccessEntriesCommand(), newAccessMigrateCommand()) // accessentries.go
	return cmd
}
