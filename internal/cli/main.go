package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
)

// Main runs root with a context that SIGINT or SIGTERM cancel (the kubelet's stop), and returns
// the process's exit status: 0, or 1 after writing "<name>: <error>" to root's error output
// (stderr). A binary's main is
//
//	func main() { os.Exit(cli.Main(newRootCommand())) }
func Main(root *cobra.Command) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(root.ErrOrStderr(), "%s: %v\n", root.Name(), err)
		return 1
	}
	return 0
}

// NewLogger is every binary's logger: logr over log/slog, one JSON object per line on w (stderr),
// showing V(n) lines for n up to verbosity (-v); a negative verbosity keeps only warnings and
// errors. Never log secrets through it.
func NewLogger(w io.Writer, verbosity int) logr.Logger {
	return logr.FromSlogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.Level(-verbosity)}))
}
