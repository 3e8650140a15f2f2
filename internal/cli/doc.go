// Package cli holds what every ekslink binary shares on its command line. Today: the version
// subcommand and --version flag, stamped from the Go build information.
//
// It is internal: the binaries under cmd/ and examples/ use it; nothing exported by the SDK's
// packages exposes it.
package cli
