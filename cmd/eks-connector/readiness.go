package main

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// readyCacheTTL is how long a /readyz result about the API server is reused. The kubelet probes
// every 10 s; anything hitting /readyz more often shares one API call per window.
const readyCacheTTL = 3 * time.Second

// readyCheckTimeout bounds one upstream readiness check.
const readyCheckTimeout = 5 * time.Second

// readyCache runs an expensive readiness check (an API call with the proxy's own token) at most
// once per ttl: concurrent callers share the check in flight, later ones reuse its result until it
// is ttl old. The check runs detached from the caller that started it, so a probe that gives up
// does not fail the others waiting for the same answer. Results are logged when they change (the
// detail stays in the log; /readyz only says what is not ready).
type readyCache struct {
	check func(context.Context) error
	ttl   time.Duration
	now   func() time.Time
	log   logr.Logger
	what  string // what is checked, for the log

	mu       sync.Mutex
	valid    bool
	at       time.Time     // when err was obtained
	err      error         // the last result
	inflight chan struct{} // closed when the running check ends; nil when none runs
	logged   string        // the last logged result ("" = ready)
}

func newReadyCache(what string, check func(context.Context) error, log logr.Logger) *readyCache {
	return &readyCache{check: check, ttl: readyCacheTTL, now: time.Now, log: log, what: what}
}

// get returns the cached result, or waits for the check in flight, or runs one.
func (c *readyCache) get(ctx context.Context) error {
	c.mu.Lock()
	for {
		if c.valid && c.now().Sub(c.at) < c.ttl {
			err := c.err
			c.mu.Unlock()
			return err
		}
		if c.inflight == nil {
			break
		}
		done := c.inflight
		c.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
	done := make(chan struct{})
	c.inflight = done
	c.mu.Unlock()

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readyCheckTimeout)
	err := c.check(cctx)
	cancel()

	c.mu.Lock()
	c.valid, c.at, c.err, c.inflight = true, c.now(), err, nil
	c.logChange(err)
	c.mu.Unlock()
	close(done)
	return err
}

// logChange logs a result that differs from the last logged one; repeats only at V(1).
func (c *readyCache) logChange(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	switch {
	case msg == c.logged && err != nil:
		c.log.V(1).Info("readiness check still failing", "check", c.what, "error", msg)
	case msg == c.logged:
	case err != nil:
		c.log.Info("readiness check failed; /readyz reports not ready", "check", c.what, "error", msg)
	default:
		c.log.Info("readiness check passed again", "check", c.what)
	}
	c.logged = msg
}
