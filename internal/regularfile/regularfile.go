// Package regularfile reads small input files (keys, tokens, certificate chains) without the two
// ways a path can hang or exhaust a command: a named pipe, whose open(2) blocks until a writer
// appears (and ignores the context and SIGTERM meanwhile), and a device such as /dev/zero that
// never ends. Only regular files are read, and at most a given number of bytes.
package regularfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular is matched (errors.Is) by the error for a path that is not a regular file: a
// named pipe, a device, a socket or a directory.
var ErrNotRegular = errors.New("not a regular file")

// TooLargeError reports a file larger than the limit given to Read.
type TooLargeError struct {
	// Path is the file that was read.
	Path string
	// Limit is the number of bytes allowed.
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: larger than %d bytes", e.Path, e.Limit)
}

// Read returns the content of the regular file at path (symbolic links are followed), failing
// with an error wrapping ErrNotRegular for anything else and with *TooLargeError when the file
// holds more than limit bytes. It never blocks on a named pipe: the type is checked before the
// file is opened, the open does not wait for a writer (O_NONBLOCK), and the opened file is checked
// again, so a path swapped for a pipe in between is refused too.
func Read(path string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := check(path, fi.Mode()); err != nil {
		return nil, err
	}
	// O_NONBLOCK makes open(2) of a FIFO return at once; it has no effect on regular files.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := check(path, fi.Mode()); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	return data, nil
}

func check(path string, m fs.FileMode) error {
	if m.IsRegular() {
		return nil
	}
	what := "a special file"
	switch {
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case m&fs.ModeDevice != 0:
		what = "a device"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m.IsDir():
		what = "a directory"
	}
	return fmt.Errorf("%s is %s, %w: write the content to a file and pass that file's path", path, what, ErrNotRegular)
}
