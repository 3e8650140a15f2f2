package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newProxyCommand is replaced by the impersonation issue's implementation.
func newProxyCommand() *cobra.Command {
	return &cobra.Command{Use: "proxy", Short: "Serve the impersonating proxy (not implemented yet)",
		RunE: func(*cobra.Command, []string) error { return errors.New("not implemented yet") }}
}
