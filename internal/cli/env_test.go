package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// newFlags is a flag set with one flag of each kind the binaries use, two of them naming their own
// variables in their help.
func newFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String("metrics-addr", "127.0.0.1:8080", "address of /metrics (empty: off)")
	fs.String("state-namespace", "", "namespace")
	fs.String("region", "", "region [env T_REGION, AWS_REGION]")
	fs.Duration("timeout", time.Minute, "give up after")
	fs.Bool("user-extras", false, "send extras")
	fs.Int("v", 0, "verbosity")
	fs.StringSlice("arn", nil, "ARNs")
	fs.Bool("force", false, "lift the guard")
	return fs
}

func TestDocumentEnvNamesEveryFlagsVariable(t *testing.T) {
	fs := newFlags()
	DocumentEnv(fs, "T_", "force")
	DocumentEnv(fs, "T_", "force") // idempotent: a flag naming its variables keeps them
	for flag, want := range map[string]string{
		"metrics-addr": "address of /metrics (empty: off) [env T_METRICS_ADDR]",
		"region":       "region [env T_REGION, AWS_REGION]",
		"user-extras":  "send extras [env T_USER_EXTRAS]",
		"force":        "lift the guard",
	} {
		if got := fs.Lookup(flag).Usage; got != want {
			t.Errorf("--%s help %q, want %q", flag, got, want)
		}
	}
	if got := EnvVars(fs.Lookup("region")); strings.Join(got, " ") != "T_REGION AWS_REGION" {
		t.Errorf("EnvVars(--region) = %q", got)
	}
	if got := EnvVars(fs.Lookup("force")); got != nil {
		t.Errorf("EnvVars(--force) = %q, want none", got)
	}
}

func TestApplyEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    map[string]string
		wantErr []string
	}{
		{
			name: "a variable sets a flag the command line left alone",
			env:  map[string]string{"T_TIMEOUT": "3s", "T_USER_EXTRAS": "true", "T_ARN": "arn:a,arn:b"},
			want: map[string]string{"timeout": "3s", "user-extras": "true", "arn": "[arn:a,arn:b]"},
		},
		{
			name: "the command line wins over the environment",
			args: []string{"--timeout=5s"},
			env:  map[string]string{"T_TIMEOUT": "3s"},
			want: map[string]string{"timeout": "5s"},
		},
		{
			name: "the first variable set wins, an empty one counts as unset",
			env:  map[string]string{"T_REGION": "", "AWS_REGION": "eu-west-1"},
			want: map[string]string{"region": "eu-west-1"},
		},
		{
			name: "an empty value is unset for a number, not a parse error",
			env:  map[string]string{"T_V": "", "T_TIMEOUT": ""},
			want: map[string]string{"v": "0", "timeout": "1m0s"},
		},
		{
			name: "an empty value leaves a string flag's default",
			env:  map[string]string{"T_METRICS_ADDR": ""},
			want: map[string]string{"metrics-addr": "127.0.0.1:8080"},
		},
		{
			name: "a guard has no variable",
			env:  map[string]string{"T_FORCE": "true"},
			want: map[string]string{"force": "false"},
		},
		{
			name:    "every bad value is an error naming the variable and the flag",
			env:     map[string]string{"T_TIMEOUT": "soon", "T_V": "loud", "T_STATE_NAMESPACE": "ok"},
			wantErr: []string{"T_TIMEOUT (for --timeout)", `"soon"`, "T_V (for --v)", `"loud"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{"T_METRICS_ADDR", "T_STATE_NAMESPACE", "T_REGION", "AWS_REGION", "T_TIMEOUT", "T_USER_EXTRAS", "T_V", "T_ARN", "T_FORCE"} {
				t.Setenv(name, "")
				unsetenv(t, name)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := newFlags()
			DocumentEnv(fs, "T_", "force")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := ApplyEnv(fs)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for flag, want := range tc.want {
				if got := fs.Lookup(flag).Value.String(); got != want {
					t.Errorf("--%s = %q, want %q", flag, got, want)
				}
			}
		})
	}
}

// BindEnv covers a whole command tree: inherited persistent flags, and the command's own PreRunE
// still runs, after the environment is applied.
func TestBindEnvCoversACommandTree(t *testing.T) {
	t.Setenv("T_KUBECONFIG", "/k")
	t.Setenv("T_DRY_RUN", "true")
	var kubeconfig string
	var dryRun, sawDryRun bool
	root := &cobra.Command{Use: "tool", SilenceUsage: true, SilenceErrors: true}
	group := &cobra.Command{Use: "group"}
	group.PersistentFlags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file")
	leaf := &cobra.Command{
		Use:     "leaf",
		PreRunE: func(*cobra.Command, []string) error { sawDryRun = dryRun; return nil },
		RunE:    func(*cobra.Command, []string) error { return nil },
	}
	leaf.Flags().BoolVar(&dryRun, "dry-run", false, "write nothing")
	group.AddCommand(leaf)
	root.AddCommand(group)
	BindEnv(root, "T_")
	AddVersion(root)
	if u := group.PersistentFlags().Lookup("kubeconfig").Usage; !strings.HasSuffix(u, "[env T_KUBECONFIG]") {
		t.Errorf("--kubeconfig help %q", u)
	}
	root.SetArgs([]string{"group", "leaf"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if kubeconfig != "/k" || !sawDryRun {
		t.Errorf("kubeconfig %q, dry-run seen by PreRunE %v", kubeconfig, sawDryRun)
	}
}
