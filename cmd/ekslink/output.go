package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/pflag"
)

// outputFormat is the -o/--output flag of the commands that print a result: "text" (the default)
// or "json". A value that is neither is refused when the flag is parsed, before any work.
type outputFormat string

func (o *outputFormat) String() string { return string(*o) }

func (o *outputFormat) Set(v string) error {
	if v != "text" && v != "json" {
		return fmt.Errorf("%q: want text or json", v)
	}
	*o = outputFormat(v)
	return nil
}

func (o *outputFormat) Type() string { return "string" }

// addOutputFlag registers -o/--output on fs, defaulting to text.
func addOutputFlag(fs *pflag.FlagSet, o *outputFormat) {
	*o = "text"
	fs.VarP(o, "output", "o", "text or json")
}

// writeJSON writes v as indented JSON, the form every -o json answer takes.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
