// Package statestore keeps one small, versioned document durable: a map of keys to byte values that
// is loaded together with an opaque version and saved only if nobody else saved in between
// (compare-and-swap). Three implementations share one contract, checked by the conformance suite in
// package storetest:
//
//   - Memory: for tests and single-process use.
//   - File: one JSON file written atomically (temp file, fsync, rename, directory fsync), mode 0600.
//   - Secret: a Kubernetes Secret, saved with resourceVersion preconditions; it owns only the keys
//     it wrote (listed in an annotation) and never touches other keys in the same Secret.
//
// Sealed wraps any Store with an envelope-encryption hook (Sealer) so values such as private keys
// need not sit in a Secret in the clear; AESGCM is a local implementation, a KMS-backed Sealer can be
// plugged in by the caller.
//
// The package deliberately does not merge concurrent changes, retry conflicts or watch for changes:
// callers load, modify and save, and on ErrConflict load again (Update does exactly that loop). It
// holds no caches: every Load reads the backing store.
package statestore
