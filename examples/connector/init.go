package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newInitCommand is replaced by the registration issue's implementation.
func newInitCommand() *cobra.Command {
	return &cobra.Command{Use: "init", Short: "Register with SSM (not implemented yet)",
		RunE: func(*cobra.Command, []string) error { return errors.New("not implemented yet") }}
}
