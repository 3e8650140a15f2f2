// Package docscheck holds tests only: every command line that the README, the guides under docs/,
// the charts' READMEs and NOTES.txt, and the binaries' own help texts name must exist in the
// binaries (each subcommand path and each --flag), and every binary must report its version.
package docscheck
