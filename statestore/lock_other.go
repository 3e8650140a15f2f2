//go:build !unix

package statestore

import "context"

// lockFile is a no-op where flock is unavailable; File still serialises writers in one process.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
