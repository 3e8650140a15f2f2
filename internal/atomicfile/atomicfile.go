// Package atomicfile writes files so that a reader sees either the old content or the new one,
// never a mix or a truncated file, and the new content survives a crash once the write returns:
// a temporary file in the same directory, written, fsynced and given its mode, then renamed over
// the target (or linked, for files that must not exist yet), then the directory fsynced. Every
// file ekslink writes goes through it.
//
// It does not lock: concurrent writers of one path each produce a complete file, and the last
// rename wins.
package atomicfile

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrExist is matched by the error WriteNew returns when path exists.
var ErrExist = os.ErrExist

// Write replaces path with data and mode atomically.
func Write(path string, data []byte, mode os.FileMode) error {
	tmp, err := writeTemp(path, data, mode)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("renaming into %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// WriteNew writes data to path only if nothing is there: the complete file is hard-linked into
// place, which fails with an error matching ErrExist if anything exists at path.
func WriteNew(path string, data []byte, mode os.FileMode) error {
	tmp, err := writeTemp(path, data, mode)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists: %w", path, ErrExist)
		}
		return fmt.Errorf("linking %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes a complete, synced temporary file next to path and returns its name. The
// name starts with a dot and carries a hash of path, so watchers of the directory can tell it
// from the target and two targets in one directory never share temporary names.
func writeTemp(path string, data []byte, mode os.FileMode) (name string, err error) {
	sum := sha256.Sum256([]byte(path))
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"."+base64.RawURLEncoding.EncodeToString(sum[:4])+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("creating a temporary file next to %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing %s: %w", f.Name(), cerr)
		}
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	// The mode first: the content is never readable with the temporary file's default mode.
	if err := f.Chmod(mode); err != nil {
		return "", fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	if _, err := f.Write(data); err != nil {
		return "", fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %s for fsync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
