package statestore

import (
	"context"
	"strconv"
	"sync"
)

// Memory is an in-memory Store, safe for concurrent use. The zero value is an empty store.
type Memory struct {
	mu      sync.Mutex
	data    map[string][]byte
	version uint64
	exists  bool
}

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory { return &Memory{} }

// Load implements Store.
func (m *Memory) Load(ctx context.Context) (*Document, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.exists {
		return nil, ErrNotFound
	}
	return &Document{Data: cloneData(m.data), Version: strconv.FormatUint(m.version, 10)}, nil
}

// Save implements Store.
func (m *Memory) Save(ctx context.Context, data map[string][]byte, version string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := ValidateKeys(data); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	current := ""
	if m.exists {
		current = strconv.FormatUint(m.version, 10)
	}
	if version != current {
		return "", &ConflictError{Store: "memory", Expected: version, Actual: current}
	}
	m.data = cloneData(data)
	m.version++
	m.exists = true
	return strconv.FormatUint(m.version, 10), nil
}
