package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// envFallback sets every flag not given on the command line from CONNECTOR_<UPPER_SNAKE>, then from
// the extra variables listed for it (flag name -> variables); the first one set wins. An empty value
// counts as unset, except for string flags when emptyStrings is true: there "" can switch a server
// off (for example CONNECTOR_METRICS_ADDR="").
func envFallback(fs *pflag.FlagSet, emptyStrings bool, extra map[string][]string) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		names := append([]string{"CONNECTOR_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))}, extra[f.Name]...)
		for _, name := range names {
			v, ok := os.LookupEnv(name)
			if !ok || (v == "" && !(emptyStrings && f.Value.Type() == "string")) {
				continue
			}
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
			return
		}
	})
	return errors.Join(errs...)
}
