// Package cli holds what every ekslink binary (cmd/eks-connector, cmd/pod-identity-agent,
// cmd/pod-identity-webhook, cmd/ekslink) shares on its command line, so they behave alike:
//
//   - Main: run the root command with a context SIGINT/SIGTERM cancel, print "<name>: <error>"
//     and return the exit status;
//   - BindEnv (DocumentEnv, ApplyEnv): the one environment-fallback convention, "[env NAME]" at
//     the end of a flag's help, <PREFIX><FLAG_NAME> by default (see env.go for the rules);
//   - NewLogger: logr over slog, JSON on stderr, level from -v;
//   - AddVersion: the version subcommand and --version flag, stamped from the Go build information.
//
// It does not define flags, defaults or subcommands: those belong to each binary. It is internal:
// nothing exported by the SDK's packages exposes it, and the embedding examples under examples/
// stay free of it so that they can be copied out of this module.
package cli
