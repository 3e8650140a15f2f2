//go:build !unix

package statestore

// lockFile is a no-op where flock is unavailable; File still serialises writers in one process.
func lockFile(string) (func(), error) { return func() {}, nil }
