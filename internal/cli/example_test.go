package cli_test

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ekslink/ekslink/internal/cli"
)

// Every binary's root command gets "version" and "--version" the same way.
func ExampleAddVersion() {
	root := &cobra.Command{Use: "my-agent"}
	cli.AddVersion(root)
	var out strings.Builder
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		panic(err)
	}
	fmt.Println(strings.HasPrefix(out.String(), "my-agent "+cli.BuildInfo().Version))
	// Output: true
}
