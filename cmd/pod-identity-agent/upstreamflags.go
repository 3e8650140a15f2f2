package main

// The command line of the upstream agent (aws/eks-pod-identity-agent cmd/root.go, cmd/server.go,
// cmd/init.go), as its Helm chart and the EKS add-on pass it, is accepted as is: its flags that
// mean the same as ekslink's are aliases of them (one flag set), the ones that name a part of an
// ekslink address are merged into it, and the rest are flags of their own.

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ekslink/ekslink/manifest/flagname"
)

// upstreamAliases maps the upstream agent's flag names to ekslink's.
var upstreamAliases = map[string]string{
	"endpoint":        "eks-auth-endpoint",
	"max-cache-size":  "cache-size",
	"max-service-qps": "rate",
	"v":               "verbosity", // ekslink's earlier --v
}

// aliasNormalizer lets --endpoint, --max-cache-size, --max-service-qps and --v set the flag they
// alias (pflag.FlagSet.SetNormalizeFunc).
func aliasNormalizer(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if canonical, ok := upstreamAliases[name]; ok {
		return pflag.NormalizedName(canonical)
	}
	return pflag.NormalizedName(name)
}

// verbosity is the log level: a number (ekslink's -v 1: more detail; negative: less) or one of the
// upstream agent's logrus level names (-v trace|debug|info|warn|error|fatal|panic).
type verbosity int

// verbosityNames map logrus levels onto slog levels (slog level = -verbosity): info is 0, error
// keeps only errors, trace and debug show every V(n) line ekslink logs.
var verbosityNames = map[string]verbosity{
	"panic": -12, "fatal": -12, "error": -8, "warn": -4, "warning": -4, "info": 0, "debug": 1, "trace": 4,
}

func (v *verbosity) String() string { return strconv.Itoa(int(*v)) }

func (v *verbosity) Set(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		*v = verbosity(n)
		return nil
	}
	if n, ok := verbosityNames[strings.ToLower(strings.TrimSpace(s))]; ok {
		*v = n
		return nil
	}
	return fmt.Errorf("want a number or one of trace, debug, info, warn, error, fatal, panic")
}

func (v *verbosity) Type() string { return "level" }

// addVerbosityFlag registers -v/--verbosity (alias --v).
func addVerbosityFlag(fs *pflag.FlagSet, v *verbosity) {
	fs.VarP(v, "verbosity", "v", "log level: trace, debug, info, warn, error or panic (upstream agent), or a number (0: info, 1: upstream failures and lapses, negative: less); alias --v [env POD_IDENTITY_V]")
}

// boolArgsOnly is the server's positional-argument rule. The upstream chart renders boolean flags
// as two arguments ("--rotate-credentials" "true", values.yaml daemonsets.hybrid.additionalArgs);
// pflag takes the flag as true and leaves "true" as an argument, which the upstream agent ignores.
// ekslink accepts such a "true" after a boolean flag that is on, and refuses anything else: a
// "false" would leave the flag on (as it does upstream), which is not what it says.
func boolArgsOnly(cmd *cobra.Command, args []string) error {
	for _, a := range args {
		b, err := strconv.ParseBool(a)
		if err != nil {
			return fmt.Errorf("unexpected argument %q: server takes flags only", a)
		}
		if !b {
			return fmt.Errorf("argument %q after a boolean flag does not turn it off (the upstream agent ignores it and leaves the flag on): write --flag=false", a)
		}
		on := false
		cmd.Flags().Visit(func(f *pflag.Flag) {
			if f.Value.Type() == "bool" && f.Value.String() == "true" {
				on = true
			}
		})
		if !on {
			return fmt.Errorf("unexpected argument %q: no boolean flag precedes it", a)
		}
	}
	return nil
}

// listenParts merges the upstream agent's host and port flags into an ekslink address flag. The
// upstream agent listens on host:port (probes: localhost:--probe-port; metrics:
// --metrics-address:--metrics-port, default 0.0.0.0:2705). When none of the part flags is given the
// address flag applies alone; when only part flags are given they make the address, with the
// upstream defaults for the missing part; when both are given they must agree.
type listenParts struct {
	addrFlag, hostFlag, portFlag string
	// defaultHost is the host used when only the port flag is given.
	defaultHost string
}

func (lp listenParts) resolve(fs *pflag.FlagSet) (string, error) {
	addr := fs.Lookup(lp.addrFlag)
	port := fs.Lookup(lp.portFlag)
	var host *pflag.Flag
	if lp.hostFlag != "" {
		host = fs.Lookup(lp.hostFlag)
	}
	hostSet := host != nil && host.Changed
	if !hostSet && !port.Changed {
		return addr.Value.String(), nil
	}
	wantHost := lp.defaultHost
	if hostSet {
		wantHost = host.Value.String()
	}
	if !addr.Changed {
		return net.JoinHostPort(wantHost, port.Value.String()), nil
	}
	given := addr.Value.String()
	var parts []string
	for _, f := range []*pflag.Flag{host, port} {
		if f != nil && f.Changed {
			parts = append(parts, fmt.Sprintf("--%s=%s", f.Name, f.Value))
		}
	}
	conflict := fmt.Errorf("--%s=%q and %s (the upstream agent's flags) name different addresses: give one or the other",
		lp.addrFlag, given, strings.Join(parts, " "))
	h, p, err := net.SplitHostPort(given)
	if err != nil {
		return "", conflict
	}
	if (hostSet && h != wantHost) || (port.Changed && p != port.Value.String()) {
		return "", conflict
	}
	return given, nil
}

// resolveUpstreamFlags merges the upstream agent's address flags into ekslink's and refuses the
// upstream values ekslink cannot honour. It runs after the environment fallbacks (cli.ApplyEnv), so environment values count as given.
func (o *serverOptions) resolveUpstreamFlags(fs *pflag.FlagSet) error {
	var err error
	if o.probeAddr, err = (listenParts{addrFlag: flagname.ProbeAddr, portFlag: "probe-port", defaultHost: "127.0.0.1"}).resolve(fs); err != nil {
		return err
	}
	if o.metricsAddr, err = (listenParts{addrFlag: flagname.MetricsAddr, hostFlag: "metrics-address", portFlag: "metrics-port", defaultHost: "0.0.0.0"}).resolve(fs); err != nil {
		return err
	}
	// The upstream agent turns its cache off with 0 (pkg/handlers/eks_credential_handler.go).
	// ekslink's cache is what keeps a node within its EKS Auth budget and serves during outages.
	if f := fs.Lookup("cache-size"); f.Changed && o.cacheSize == 0 {
		return fmt.Errorf("--cache-size (--max-cache-size) 0 would turn caching off, as in the upstream agent; ekslink always caches: give a positive size")
	}
	if f := fs.Lookup("max-credential-retention-before-renewal"); f.Changed && o.maxRetention <= 0 {
		return fmt.Errorf("--max-credential-retention-before-renewal %s: 0 turns caching off in the upstream agent and ekslink always caches: give a positive duration, or leave it out to renew only --refresh-before expiry", o.maxRetention)
	}
	return nil
}
