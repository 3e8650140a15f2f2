package registration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ekslink/ekslink/statestore"
)

// StateKey is the document key the registration state is stored under.
const StateKey = "registration.json"

// Status is the phase of a registration.
type Status string

// Statuses.
const (
	// StatusPending: key material is persisted, SSM may or may not have registered it yet.
	StatusPending Status = "pending"
	// StatusRegistered: SSM registered the material and the instance id is recorded.
	StatusRegistered Status = "registered"
)

// State is the durable registration record.
type State struct {
	// ActivationID the material is (being) registered with.
	ActivationID string `json:"activationId"`
	// Region of the SSM endpoint.
	Region string `json:"region"`
	// Status is pending or registered.
	Status Status `json:"status"`
	// InstanceID is the managed instance id ("mi-..." or "eks_c:..."), set once registered.
	InstanceID string `json:"instanceId,omitempty"`
	// Fingerprint is the instance fingerprint registered with the key.
	Fingerprint string `json:"fingerprint"`
	// Key is the current key (rotated by the agent, synced by KeySync).
	Key Key `json:"key"`
	// PreviousKeys holds earlier keys, newest first (at most MaxPreviousKeys).
	PreviousKeys []Key `json:"previousKeys,omitempty"`
	// InstanceType and AvailabilityZone are carried through from the agent's vault (empty on-prem).
	InstanceType     string `json:"instanceType,omitempty"`
	AvailabilityZone string `json:"availabilityZone,omitempty"`
	// Orphans lists registrations this state replaced, for the operator to deregister in SSM.
	Orphans []Orphan `json:"orphans,omitempty"`
	// RegisteredAt and UpdatedAt are informational.
	RegisteredAt time.Time `json:"registeredAt,omitzero"`
	UpdatedAt    time.Time `json:"updatedAt,omitzero"`
}

// Orphan is a registration that was replaced and may still exist in SSM.
type Orphan struct {
	ActivationID string `json:"activationId"`
	// InstanceID is empty when a pending registration was abandoned: SSM may or may not have
	// registered it; look it up by Fingerprint.
	InstanceID  string    `json:"instanceId,omitempty"`
	Fingerprint string    `json:"fingerprint"`
	Reason      string    `json:"reason"`
	At          time.Time `json:"at"`
}

// MaxPreviousKeys bounds State.PreviousKeys.
const MaxPreviousKeys = 3

// Registered reports whether s is a complete registration.
func (s *State) Registered() bool {
	return s != nil && s.Status == StatusRegistered && s.InstanceID != ""
}

// ErrCorruptState is matched by errors about an unreadable state document.
var ErrCorruptState = errors.New("registration: corrupt state")

// LoadState reads the state from store. It returns (nil, version, nil) when the document is missing
// or has no registration yet (version "" when missing).
func LoadState(ctx context.Context, store statestore.Store) (*State, string, error) {
	doc, err := store.Load(ctx)
	if errors.Is(err, statestore.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	st, err := decodeState(doc)
	return st, doc.Version, err
}

func decodeState(doc *statestore.Document) (*State, error) {
	raw, ok := doc.Data[StateKey]
	if !ok || len(raw) == 0 {
		return nil, nil
	}
	var st State
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("%w: %s is not valid JSON: %v (refusing to register again over it: fix or delete it)", ErrCorruptState, StateKey, err)
	}
	if st.Status != StatusPending && st.Status != StatusRegistered {
		return nil, fmt.Errorf("%w: unknown status %q", ErrCorruptState, st.Status)
	}
	return &st, nil
}

func encodeState(doc *statestore.Document, st *State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if doc.Data == nil {
		doc.Data = map[string][]byte{}
	}
	doc.Data[StateKey] = b
	return nil
}

// saveState writes st against version, keeping any other keys of the document.
func saveState(ctx context.Context, store statestore.Store, st *State, version string) (string, error) {
	data := map[string][]byte{}
	if version != "" {
		doc, err := store.Load(ctx)
		if err != nil && !errors.Is(err, statestore.ErrNotFound) {
			return "", err
		}
		if err == nil {
			if doc.Version != version {
				return "", &statestore.ConflictError{Store: "registration state", Expected: version, Actual: doc.Version}
			}
			data = doc.Data
		}
	}
	doc := &statestore.Document{Data: data}
	if err := encodeState(doc, st); err != nil {
		return "", err
	}
	return store.Save(ctx, doc.Data, version)
}
