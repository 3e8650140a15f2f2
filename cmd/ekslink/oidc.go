package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newOIDCCommand is replaced by the oidc issue's implementation.
func newOIDCCommand() *cobra.Command {
	return &cobra.Command{Use: "oidc", Short: "Self-hosted IRSA tooling (not implemented yet)",
		RunE: func(*cobra.Command, []string) error { return errors.New("not implemented yet") }}
}
