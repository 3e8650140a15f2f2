package impersonation

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/ekslink/ekslink/internal/filewatch"
)

// credentials holds the proxy's own bearer token and the CA pool that verifies the API server,
// reloaded from files in the background (fsnotify on the directories, so kubelet's "..data"
// symlink swaps are seen, plus a periodic re-read) and on demand after a 401. Readers never touch
// the disk: they load atomics. A failed reload keeps the last good value.
type credentials struct {
	tokenFile, caFile string
	readFile          func(string) ([]byte, error)
	log               logr.Logger
	metrics           *metrics
	now               func() time.Time

	token atomic.Pointer[bearer]
	pool  atomic.Pointer[x509.CertPool]
	caPEM atomic.Pointer[[]byte]

	mu         sync.Mutex // serializes reloads
	lastReload time.Time
}

// errNoToken is returned when the token file yields no usable token and none was loaded before.
var errNoToken = errors.New("impersonation: no service-account token loaded")

// bearer is a token with its Authorization header value, built once per token, not per request.
// bearer is a token and its Authorization header value, built once per token: values is shared
// by every request sent with it (a request's header values are only read by the transports, and
// replaced, never written in place, by everything else; cap == len, so an append copies).
type bearer struct {
	token, header string
	values        []string
}

func newBearer(tok string) *bearer {
	h := "Bearer " + tok
	return &bearer{token: tok, header: h, values: []string{h}}
}

func (c *credentials) Token() string {
	if b := c.token.Load(); b != nil {
		return b.token
	}
	return ""
}

// bearer returns the current token and its header value (nil before any token was loaded).
func (c *credentials) bearer() *bearer { return c.token.Load() }

func (c *credentials) Pool() *x509.CertPool { return c.pool.Load() }

// reload reads both files; it returns whether anything changed. Errors leave the old values.
func (c *credentials) reload(reason string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastReload = c.now()
	changed := false
	var errs []error
	if c.tokenFile != "" {
		data, err := c.readFile(c.tokenFile)
		tok := string(bytes.TrimSpace(data))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("reading token file %s: %w", c.tokenFile, err))
		case tok == "":
			errs = append(errs, fmt.Errorf("token file %s is empty", c.tokenFile))
		case !sendableToken(tok):
			errs = append(errs, fmt.Errorf("token file %s holds whitespace or control characters", c.tokenFile))
		case c.Token() != tok:
			c.token.Store(newBearer(tok))
			changed = true
		}
	}
	if c.caFile != "" {
		data, err := c.readFile(c.caFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("reading CA file %s: %w", c.caFile, err))
		default:
			if old := c.caPEM.Load(); old != nil && bytes.Equal(*old, data) {
				break
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(data) {
				errs = append(errs, fmt.Errorf("CA file %s holds no PEM certificate", c.caFile))
				break
			}
			c.pool.Store(pool)
			c.caPEM.Store(&data)
			changed = true
		}
	}
	err := errors.Join(errs...)
	result := "unchanged"
	switch {
	case err != nil:
		result = "error"
		c.log.Error(err, "reloading credentials failed; keeping the last good ones", "reason", reason)
	case changed:
		result = "changed"
		c.log.Info("reloaded credentials", "reason", reason)
	}
	if c.metrics != nil {
		c.metrics.reloads.WithLabelValues(result).Inc()
	}
	return changed, err
}

// reloadAfter401 re-reads the files unless that happened within minGap (a burst of 401s must not
// turn into a burst of disk reads). It reports whether the token changed.
func (c *credentials) reloadAfter401(minGap time.Duration) bool {
	c.mu.Lock()
	recent := c.now().Sub(c.lastReload) < minGap
	c.mu.Unlock()
	if recent {
		return false
	}
	changed, _ := c.reload("unauthorized")
	return changed
}

// run watches the files' directories and re-reads periodically until ctx is done. A "..data" swap
// produces several events; one reload shortly after them is enough.
func (c *credentials) run(ctx context.Context, interval time.Duration, watch bool) {
	for reason := range filewatch.Start(ctx, filewatch.Options{
		Files: []string{c.tokenFile, c.caFile}, Interval: interval, Debounce: 20 * time.Millisecond,
		DisableEvents: !watch, Logger: c.log,
	}) {
		_, _ = c.reload(reason)
	}
}

// sendableToken reports whether tok can follow "Bearer " in an Authorization header as one
// token: no whitespace and no control characters.
func sendableToken(tok string) bool {
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

func defaultReadFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	// Tokens and CA bundles are small; refuse to read anything huge.
	if _, err := b.ReadFrom(&limitedReader{f: f, n: 1 << 20}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type limitedReader struct {
	f *os.File
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("file larger than 1 MiB")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= int64(n)
	return n, err
}
