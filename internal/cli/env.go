package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The environment fallback of every ekslink binary, in one convention:
//
//   - A flag's variables are the ones its help names at its end: "... [env CONNECTOR_LISTEN]", or
//     "[env CONNECTOR_REGION, AWS_REGION]" for more than one, tried in that order. The help text is
//     the binding, so it cannot drift from what the binary reads.
//   - A flag whose help names none gets <PREFIX><FLAG_NAME> (EnvName), the binary's prefix rule:
//     CONNECTOR_ for eks-connector, POD_IDENTITY_ for pod-identity-agent, EKSLINK_ (EKSLINK_OIDC_
//     for "ekslink oidc") for ekslink. Names that predate the rule (EKS_CLUSTER_NAME, AWS_REGION,
//     POD_NAME, ...) are written in the flag's help and keep working.
//   - The command line wins; among the variables, the first one set wins.
//   - An empty value counts as unset: the next variable is tried, else the default stays. Manifests
//     render unset values as "" (a Helm value left empty), and a number or a duration cannot be
//     empty anyway. To give a flag the empty string (--metrics-addr="" switches a server off), use
//     the flag. (This is viper's default too.)
//   - A value the flag refuses is an error naming the variable and the flag; every such error is
//     reported at once.
//   - Safety switches (--force) name no variable: a variable left over in a shell or a CI job must
//     never lift a guard. "help" never has one.

// envTag opens the list of a flag's variables at the end of its help.
const envTag = "[env "

// EnvName is the variable of flag under prefix: EnvName("CONNECTOR_", "metrics-addr") is
// "CONNECTOR_METRICS_ADDR".
func EnvName(prefix, flag string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// EnvVars returns the variables f's help names ("[env A, B]" at its end), in order; nil when it
// names none.
func EnvVars(f *pflag.Flag) []string {
	u := strings.TrimSpace(f.Usage)
	i := strings.LastIndex(u, envTag)
	if i < 0 || !strings.HasSuffix(u, "]") {
		return nil
	}
	var names []string
	for _, n := range strings.Split(u[i+len(envTag):len(u)-1], ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// DocumentEnv gives every flag of fs whose help names no variable the variable EnvName(prefix,
// name), appended to its help as " [env NAME]". The flags named in except, and "help", get none.
func DocumentEnv(fs *pflag.FlagSet, prefix string, except ...string) {
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || EnvVars(f) != nil || contains(except, f.Name) {
			return
		}
		f.Usage += " " + envTag + EnvName(prefix, f.Name) + "]"
	})
}

// ApplyEnv sets every flag of fs the command line left alone from its variables (EnvVars), by the
// rules above. A flag set this way counts as given (pflag's Changed), as on the command line.
func ApplyEnv(fs *pflag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		for _, name := range EnvVars(f) {
			v, ok := os.LookupEnv(name)
			if !ok || v == "" {
				continue
			}
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s (for --%s): %w", name, f.Name, err))
			}
			return
		}
	})
	return errors.Join(errs...)
}

// BindEnv applies the convention to root and every command below it that exists now (add the
// version command afterwards): DocumentEnv on their flags, local and persistent, and ApplyEnv on
// every runnable command's flags before its own PreRunE. Flags named in except get no variable.
func BindEnv(root *cobra.Command, prefix string, except ...string) {
	DocumentEnv(root.PersistentFlags(), prefix, except...)
	DocumentEnv(root.Flags(), prefix, except...)
	if root.Runnable() {
		prev := root.PreRunE
		root.PreRunE = func(cmd *cobra.Command, args []string) error {
			if err := ApplyEnv(cmd.Flags()); err != nil {
				return err
			}
			if prev != nil {
				return prev(cmd, args)
			}
			return nil
		}
	}
	for _, c := range root.Commands() {
		BindEnv(c, prefix, except...)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
