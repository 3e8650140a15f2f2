package statestore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrNotFound is returned by Load when the document does not exist yet.
var ErrNotFound = errors.New("statestore: document not found")

// ErrConflict is matched (errors.Is) by the error Save returns when the document's version is not the
// one the caller loaded: someone else saved in between, or the document exists when creating.
var ErrConflict = errors.New("statestore: version conflict")

// ConflictError is the typed error behind ErrConflict.
type ConflictError struct {
	// Store names the store (for messages), for example "secret eks-connector/eks-connector-state-0".
	Store string
	// Expected is the version the caller saved against ("" = create).
	Expected string
	// Actual is the version found ("" = absent or unknown).
	Actual string
}

// Error says which versions clashed and what to do.
func (e *ConflictError) Error() string {
	exp := e.Expected
	if exp == "" {
		exp = "<absent>"
	}
	act := e.Actual
	if act == "" {
		act = "<unknown>"
	}
	return fmt.Sprintf("statestore: %s: version conflict: saved against version %s but found %s: load again and retry", e.Store, exp, act)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Document is a loaded state document.
type Document struct {
	// Data holds the document's values. Keys must be valid Secret keys ([-._a-zA-Z0-9]+).
	Data map[string][]byte
	// Version is the opaque version the document was loaded at; pass it to Save.
	Version string
}

// Clone returns a deep copy of d.
func (d *Document) Clone() *Document {
	if d == nil {
		return nil
	}
	out := &Document{Version: d.Version, Data: make(map[string][]byte, len(d.Data))}
	for k, v := range d.Data {
		out.Data[k] = append([]byte(nil), v...)
	}
	return out
}

// Store is a versioned document store.
type Store interface {
	// Load returns the document and its version, or an error matching ErrNotFound.
	Load(ctx context.Context) (*Document, error)
	// Save replaces the document's values with data if its current version is version, and returns
	// the new version. An empty version means create-if-absent. A mismatch is an error matching
	// ErrConflict; nothing is written then.
	Save(ctx context.Context, data map[string][]byte, version string) (string, error)
}

var keyPattern = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// ValidateKeys checks that every key of data is usable in every Store (the Secret key syntax).
func ValidateKeys(data map[string][]byte) error {
	for k := range data {
		if len(k) > 253 || !keyPattern.MatchString(k) {
			return fmt.Errorf("statestore: invalid key %q: keys must match [-._a-zA-Z0-9]+ and be at most 253 characters", k)
		}
	}
	return nil
}

// UpdateOptions tune Update.
type UpdateOptions struct {
	// MaxAttempts bounds the load-modify-save loop (default 10; negative = until ctx ends).
	MaxAttempts int
	// Backoff is the pause after the n-th conflict (default: 10ms * n, at most 1s).
	Backoff func(attempt int) time.Duration
}

// Update runs a load-modify-save loop: it loads the document (a missing one is passed as an empty
// document with version ""), calls modify on a copy, and saves against the loaded version, repeating
// on ErrConflict. modify may return ErrNoChange to stop without saving. It returns the saved (or
// current) document.
func Update(ctx context.Context, s Store, modify func(*Document) error, o UpdateOptions) (*Document, error) {
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 10
	}
	if o.Backoff == nil {
		o.Backoff = func(n int) time.Duration { return min(time.Duration(n)*10*time.Millisecond, time.Second) }
	}
	for attempt := 1; ; attempt++ {
		doc, err := s.Load(ctx)
		if errors.Is(err, ErrNotFound) {
			doc, err = &Document{Data: map[string][]byte{}}, nil
		}
		if err != nil {
			return nil, err
		}
		work := doc.Clone()
		if err := modify(work); err != nil {
			if errors.Is(err, ErrNoChange) {
				return doc, nil
			}
			return nil, err
		}
		v, err := s.Save(ctx, work.Data, doc.Version)
		if err == nil {
			work.Version = v
			return work, nil
		}
		if !errors.Is(err, ErrConflict) || (o.MaxAttempts > 0 && attempt >= o.MaxAttempts) {
			return nil, err
		}
		t := time.NewTimer(o.Backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// ErrNoChange may be returned by an Update modify function to skip the save.
var ErrNoChange = errors.New("statestore: no change")

// DefaultStatePrefix is the default name prefix of per-pod state objects.
const DefaultStatePrefix = "eks-connector-state"

// OrdinalName returns "<prefix>-<ordinal>" for a StatefulSet pod name "<set>-<ordinal>", so that each
// replica keeps its own state object across restarts. It rejects pod names that do not end in a
// decimal ordinal (such as Deployment pod names), since those would change on every restart.
func OrdinalName(prefix, podName string) (string, error) {
	if prefix == "" {
		return "", errors.New("statestore: empty state name prefix")
	}
	i := strings.LastIndexByte(podName, '-')
	if i <= 0 || i == len(podName)-1 {
		return "", fmt.Errorf("statestore: pod name %q does not end in -<ordinal>: run the connector as a StatefulSet (pods named <set>-0, <set>-1, ...)", podName)
	}
	ord := podName[i+1:]
	n, err := strconv.ParseUint(ord, 10, 31)
	if err != nil || strconv.FormatUint(n, 10) != ord {
		return "", fmt.Errorf("statestore: pod name %q does not end in a decimal ordinal (found %q): run the connector as a StatefulSet", podName, ord)
	}
	name := prefix + "-" + ord
	if len(name) > 253 {
		return "", fmt.Errorf("statestore: state name %q is longer than 253 characters", name)
	}
	return name, nil
}

func cloneData(in map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(in))
	for k, v := range in {
		out[k] = append([]byte(nil), v...)
	}
	return out
}
