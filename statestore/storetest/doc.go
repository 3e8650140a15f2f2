// Package storetest is the conformance suite every statestore.Store implementation passes: absent
// documents, create-if-absent, compare-and-swap on the loaded version, removal of keys, isolation of
// loaded copies, key validation, cancelled contexts and concurrent read-modify-write without lost
// updates.
//
// Call Run from a test of the implementation with a constructor that returns a fresh, empty store.
// It deliberately does not test implementation-specific behaviour (file modes, Secret ownership,
// RBAC); those tests live next to each implementation.
package storetest
