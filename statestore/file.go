package statestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"

	"github.com/ekslink/ekslink/internal/atomicfile"
)

// File is a Store backed by one JSON file, written atomically: a temporary file in the same
// directory is written, fsynced and renamed over the target, then the directory is fsynced. The file
// mode is 0600. The version is a counter kept in the file, so concurrent writers in one process are
// serialised and compared; across processes the compare-and-swap is guarded by an exclusive lock
// file next to the document.
type File struct {
	path string
	mu   sync.Mutex
}

// fileDoc is the on-disk shape: values are base64 (encoding/json's []byte encoding).
type fileDoc struct {
	Version uint64            `json:"version"`
	Data    map[string][]byte `json:"data"`
}

// NewFile returns a Store backed by the file at path. The directory must exist.
func NewFile(path string) *File { return &File{path: path} }

// Path is the document's path.
func (f *File) Path() string { return f.path }

func (f *File) read() (*fileDoc, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("statestore: reading %s: %w", f.path, err)
	}
	var d fileDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("statestore: %s is not a state document (corrupt or foreign file): %w", f.path, err)
	}
	if d.Data == nil {
		d.Data = map[string][]byte{}
	}
	return &d, nil
}

// Load implements Store.
func (f *File) Load(ctx context.Context) (*Document, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d, err := f.read()
	if err != nil {
		return nil, err
	}
	return &Document{Data: d.Data, Version: strconv.FormatUint(d.Version, 10)}, nil
}

// Save implements Store.
func (f *File) Save(ctx context.Context, data map[string][]byte, version string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := ValidateKeys(data); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	unlock, err := lockFile(ctx, f.path+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	current := ""
	var next uint64 = 1
	d, err := f.read()
	switch {
	case err == nil:
		current = strconv.FormatUint(d.Version, 10)
		next = d.Version + 1
	case errors.Is(err, ErrNotFound):
	default:
		return "", err
	}
	if version != current {
		return "", &ConflictError{Store: "file " + f.path, Expected: version, Actual: current}
	}
	b, err := json.Marshal(fileDoc{Version: next, Data: data})
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(f.path, b, 0o600); err != nil {
		return "", fmt.Errorf("statestore: %w", err)
	}
	return strconv.FormatUint(next, 10), nil
}
