// Command pod-identity-agent is the EKS Pod Identity agent: "server" serves /v1/credentials on the
// link-local agent addresses (see package eksauth/podidentity), "init" creates those addresses on
// the node (Linux, netlink).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ekslink/ekslink/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "pod-identity-agent:", err)
		stop()
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "pod-identity-agent",
		Short: "EKS Pod Identity agent: node-local AWS credentials for pods",
		Long: `EKS Pod Identity agent: pods' AWS SDKs send their projected service account token to
http://169.254.170.23/v1/credentials (or [fd00:ec2::23]); the agent exchanges it through the EKS Auth
API (AssumeRoleForPodIdentity) and caches the answer.

Every flag can also be set with the environment variable shown in its description.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServerCommand(), newInitCommand())
	cli.AddVersion(root)
	return root
}

// bindEnv sets every flag the command line left alone from its environment variable (the "[env X]"
// at the end of its usage).
func bindEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		i := strings.LastIndex(f.Usage, "[env ")
		if i < 0 {
			return
		}
		name := strings.TrimSuffix(f.Usage[i+len("[env "):], "]")
		if v, ok := os.LookupEnv(name); ok && v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("environment %s=%q for --%s: %w", name, v, f.Name, e)
			}
		}
	})
	return err
}

func newLogger(verbosity int) logr.Logger {
	return logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(-verbosity)}))
}
