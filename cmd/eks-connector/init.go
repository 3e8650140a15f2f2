package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ekslink/ekslink/iamarn"
	"github.com/ekslink/ekslink/internal/cli"
	"github.com/ekslink/ekslink/manifest/flagname"
	"github.com/ekslink/ekslink/registration"
	"github.com/ekslink/ekslink/statestore"
)

// envPrefix is the prefix of every flag's environment variable: --metrics-addr falls back to
// CONNECTOR_METRICS_ADDR (see internal/cli). Flags that also read older names list them in their help.
const envPrefix = "CONNECTOR_"

// Defaults shared by the init and sync roles.
const (
	defaultStateNamespace = "eks-connector"
	inClusterNamespace    = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

// stateFlags locate the per-pod state Secret; init and sync share them.
type stateFlags struct {
	statePrefix    string
	stateNamespace string
	podName        string
	kubeconfig     string
	vaultDir       string
	encryptionKey  string
}

func addStateFlags(fs *pflag.FlagSet, o *stateFlags) {
	fs.StringVar(&o.statePrefix, flagname.StateSecretPrefix, statestore.DefaultStatePrefix, "name prefix of the state Secret; the pod's StatefulSet ordinal is appended (<prefix>-<ordinal>)")
	fs.StringVar(&o.stateNamespace, flagname.StateNamespace, "", "namespace of the state Secret (default: the pod's namespace in-cluster, else "+defaultStateNamespace+")")
	fs.StringVar(&o.podName, flagname.PodName, "", "this pod's name, which must end in a StatefulSet ordinal (default: the hostname) [env CONNECTOR_POD_NAME, POD_NAME]")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: the in-cluster service account)")
	fs.StringVar(&o.encryptionKey, "state-encryption-key-file", "", "optional file with a 32-byte AES-256 key (raw or base64) sealing the values of the state Secret, so the SSM private key is not stored in the clear; init and sync must use the same key")
	fs.StringVar(&o.vaultDir, flagname.VaultDir, registration.DefaultVaultDir, "the SSM agent's vault directory on this container's file system")
}

// resolve fills defaults that depend on the environment and validates; each problem is one error.
func (o *stateFlags) resolve() (stateName string, problems []error) {
	if o.podName == "" {
		if h, err := os.Hostname(); err == nil {
			o.podName = h
		}
	}
	if o.stateNamespace == "" {
		o.stateNamespace = defaultStateNamespace
		if b, err := os.ReadFile(inClusterNamespace); err == nil && strings.TrimSpace(string(b)) != "" {
			o.stateNamespace = strings.TrimSpace(string(b))
		}
	}
	name, err := statestore.OrdinalName(o.statePrefix, o.podName)
	if err != nil {
		problems = append(problems, fmt.Errorf("--pod-name/--state-secret-prefix: %w", err))
	}
	if o.vaultDir == "" {
		problems = append(problems, errors.New("--vault-dir is empty"))
	}
	if o.kubeconfig != "" {
		if _, err := os.Stat(o.kubeconfig); err != nil {
			problems = append(problems, fmt.Errorf("--kubeconfig: %w", err))
		}
	}
	if o.encryptionKey != "" {
		if _, err := o.sealer(); err != nil {
			problems = append(problems, err)
		}
	}
	return name, problems
}

// sealer reads --state-encryption-key-file.
func (o *stateFlags) sealer() (statestore.Sealer, error) {
	b, err := os.ReadFile(o.encryptionKey)
	if err != nil {
		return nil, fmt.Errorf("--state-encryption-key-file: %w", err)
	}
	key := b
	if len(key) != 32 {
		dec, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(dec) != 32 {
			return nil, fmt.Errorf("--state-encryption-key-file: want 32 raw bytes or their base64, found %d bytes", len(b))
		}
		key = dec
	}
	return statestore.NewAESGCM(key)
}

func (o *stateFlags) restConfig() (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if o.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	cfg.Timeout = 30 * time.Second
	cfg.UserAgent = "ekslink-connector"
	return cfg, nil
}

// store returns the state store and a description for logs.
func (o *stateFlags) store(stateName string) (statestore.Store, string, error) {
	cfg, err := o.restConfig()
	if err != nil {
		return nil, "", err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	var store statestore.Store = statestore.NewSecret(client, o.stateNamespace, stateName, statestore.SecretOptions{
		Labels: map[string]string{"app.kubernetes.io/name": "eks-connector", "app.kubernetes.io/component": "state"},
		Owner:  "eks-connector init/sync",
	})
	desc := "secret " + o.stateNamespace + "/" + stateName
	if o.encryptionKey != "" {
		sealer, err := o.sealer()
		if err != nil {
			return nil, "", err
		}
		store = statestore.Sealed(store, sealer)
		desc += " (sealed)"
	}
	return store, desc, nil
}

type initOptions struct {
	stateFlags
	activationID       string
	activationCodeFile string
	region             string
	ssmEndpoint        string
	agentVaultDir      string
	timeout            time.Duration
	verbosity          int
}

// newInitCommand is the connector's "init" role: register with SSM once (crash-safe, recorded in
// the state Secret) and write the SSM agent's vault.
func newInitCommand() *cobra.Command {
	o := &initOptions{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Register the SSM agent with the activation (once, recorded in the state Secret) and write its vault",
		Long: `Register the cluster's SSM agent with the hybrid activation from "aws eks register-cluster" and
write the agent's vault. The registration is recorded in the Secret <state-secret-prefix>-<ordinal>
before and after SSM is called, so a restart reuses it and a crash never registers different key
material twice. If the activation id changes, the old registration is kept in the Secret as an
orphan for the operator. The activation code is read from --activation-code-file or
$EKS_ACTIVATION_CODE and is never logged; do not pass it as an argument.

Every flag can also be set with the environment variable shown in its description.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInit(cmd.Context(), o, cli.NewLogger(cmd.ErrOrStderr(), o.verbosity).WithName("init"))
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.activationID, flagname.ActivationID, "", "SSM activation id from register-cluster (required) [env CONNECTOR_ACTIVATION_ID, EKS_ACTIVATION_ID]")
	fs.StringVar(&o.activationCodeFile, flagname.ActivationCodeFile, "", "file holding the activation code, e.g. the mounted key \"code\" of the Secret eks-connector-activation (default: $EKS_ACTIVATION_CODE)")
	fs.StringVar(&o.region, flagname.Region, "", "region of the activation (required) [env CONNECTOR_REGION, AWS_REGION]")
	fs.StringVar(&o.ssmEndpoint, flagname.SSMEndpoint, "", "SSM endpoint URL (default: https://ssm.<region>.<partition domain>) [env CONNECTOR_SSM_ENDPOINT, AWS_ENDPOINT_URL_SSM]")
	fs.StringVar(&o.agentVaultDir, "agent-vault-dir", registration.DefaultVaultDir, "the vault directory as the SSM agent sees it, used for the paths in Vault/Manifest")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long (the next start resumes safely)")
	fs.IntVarP(&o.verbosity, "v", "v", 0, "log verbosity")
	addStateFlags(fs, &o.stateFlags)
	cli.BindEnv(cmd, envPrefix)
	return cmd
}

// validate resolves defaults and returns every problem at once.
func (o *initOptions) validate() (stateName, code string, err error) {
	stateName, problems := o.stateFlags.resolve()
	if o.activationID == "" {
		problems = append(problems, errors.New("--activation-id is required (or $CONNECTOR_ACTIVATION_ID / $EKS_ACTIVATION_ID)"))
	} else if len(o.activationID) < 36 {
		problems = append(problems, fmt.Errorf("--activation-id has %d characters, an SSM activation id has at least 36", len(o.activationID)))
	}
	var readErr error
	if o.activationCodeFile != "" {
		var b []byte
		if b, readErr = os.ReadFile(o.activationCodeFile); readErr != nil {
			problems = append(problems, fmt.Errorf("--activation-code-file: %w", readErr))
		}
		code = strings.TrimSpace(string(b))
	} else {
		code = strings.TrimSpace(os.Getenv("EKS_ACTIVATION_CODE"))
	}
	switch {
	case readErr != nil:
	case code == "" && o.activationCodeFile != "":
		problems = append(problems, fmt.Errorf("--activation-code-file %s is empty", o.activationCodeFile))
	case code == "":
		problems = append(problems, errors.New("no activation code: set --activation-code-file or $EKS_ACTIVATION_CODE"))
	case len(code) < 20:
		problems = append(problems, fmt.Errorf("the activation code has %d characters, an SSM activation code has at least 20", len(code)))
	}
	if o.region == "" {
		problems = append(problems, errors.New("--region is required (or $CONNECTOR_REGION / $AWS_REGION)"))
	} else if _, perr := iamarn.PartitionForRegion(o.region); perr != nil {
		problems = append(problems, fmt.Errorf("--region: %w", perr))
	}
	if o.ssmEndpoint != "" {
		if u, perr := url.Parse(o.ssmEndpoint); perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			problems = append(problems, fmt.Errorf("--ssm-endpoint %q is not an http(s) URL", o.ssmEndpoint))
		}
	}
	if !strings.HasPrefix(o.agentVaultDir, "/") {
		problems = append(problems, fmt.Errorf("--agent-vault-dir %q must be absolute", o.agentVaultDir))
	}
	if o.timeout <= 0 {
		problems = append(problems, errors.New("--timeout must be positive"))
	}
	return stateName, code, errors.Join(problems...)
}

func runInit(ctx context.Context, o *initOptions, log logr.Logger) error {
	stateName, code, err := o.validate()
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	store, storeDesc, err := o.store(stateName)
	if err != nil {
		return err
	}
	// The SDK's shared configuration supplies the HTTP client (it honours AWS_CA_BUNDLE and the
	// proxy environment the way every AWS tool does), AWS_ENDPOINT_URL and the retry settings
	// (AWS_MAX_ATTEMPTS). RegisterManagedInstance itself is anonymous.
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(o.region))
	if err != nil {
		return fmt.Errorf("loading the AWS SDK configuration: %w", err)
	}
	client, err := registration.NewFromConfig(awsCfg, func(co *registration.ClientOptions) {
		if o.ssmEndpoint != "" {
			co.BaseEndpoint = aws.String(o.ssmEndpoint)
		}
	})
	if err != nil {
		return err
	}
	log.Info("starting", "activationID", o.activationID, "region", o.region, "ssmEndpoint", client.Endpoint(),
		"stateStore", storeDesc, "vaultDir", o.vaultDir)
	reg, err := registration.New(store, registration.Activation{ID: o.activationID, Code: code},
		registration.Options{Region: o.region, Client: client, Logger: log})
	if err != nil {
		return err
	}
	st, err := reg.Ensure(ctx)
	if err != nil {
		return err
	}
	if st, err = adoptRotatedKey(ctx, store, o.vaultDir, st, log); err != nil {
		return err
	}
	if err := registration.WriteVault(ctx, o.vaultDir, st, registration.VaultOptions{AgentVaultDir: o.agentVaultDir}); err != nil {
		return err
	}
	for _, orphan := range st.Orphans {
		log.Info("orphaned registration recorded in the state Secret; deregister it in SSM when no longer used",
			"activationID", orphan.ActivationID, "instanceID", orphan.InstanceID, "fingerprint", orphan.Fingerprint)
	}
	log.Info("vault written; the SSM agent can start", "instanceID", st.InstanceID, "vaultDir", o.vaultDir)
	return nil
}

// adoptRotatedKey saves into the state a key the agent rotated in a vault that outlived the last
// run (init containers run again when the pod sandbox restarts, the vault's emptyDir survives), so
// that writing the vault from the state does not replace the key SSM now holds with the state's
// older one (a lock-out). Only the private key counts: the agent's record keeps a stale or empty
// publicKey after a rotation. A vault of another instance, an unreadable one or one holding a key the
// state already has (current or previous) is left to be overwritten. If the rotated key cannot be
// saved, init fails without touching the vault; the next run tries again.
func adoptRotatedKey(ctx context.Context, store statestore.Store, vaultDir string, st *registration.State, log logr.Logger) (*registration.State, error) {
	rk, err := registration.ReadRegistrationKey(vaultDir)
	if err != nil || rk.Validate() != nil || rk.InstanceID != st.InstanceID || rk.PrivateKey == st.Key.PrivateKey {
		return st, nil
	}
	for _, prev := range st.PreviousKeys {
		if prev.PrivateKey == rk.PrivateKey {
			return st, nil
		}
	}
	log.Info("the vault holds a key the agent rotated that the state Secret does not have yet; saving it before writing the vault", "instanceID", st.InstanceID)
	ks, err := registration.NewKeySync(store, vaultDir, registration.KeySyncOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	if err := ks.SyncOnce(ctx); err != nil {
		return nil, fmt.Errorf("the vault holds a key the agent rotated that is not in the state Secret yet; not overwriting it: %w", err)
	}
	cur, _, err := registration.LoadState(ctx, store)
	if err != nil {
		return nil, err
	}
	if !cur.Registered() || cur.InstanceID != st.InstanceID {
		return nil, fmt.Errorf("the state changed while saving the vault's rotated key (instance %s); not overwriting the vault", st.InstanceID)
	}
	return cur, nil
}
