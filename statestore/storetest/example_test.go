package storetest_test

import (
	"testing"

	"github.com/ekslink/ekslink/statestore"
	"github.com/ekslink/ekslink/statestore/storetest"
)

// A store implementation's test runs the suite with a constructor for fresh, empty stores.
func Example() {
	_ = func(t *testing.T) {
		storetest.Run(t, func(*testing.T) statestore.Store { return statestore.NewMemory() }, storetest.Options{Writers: 4})
	}
}

func TestSuiteOnMemory(t *testing.T) {
	storetest.Run(t, func(*testing.T) statestore.Store { return statestore.NewMemory() }, storetest.Options{})
}
