package webhook

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// freshReads shares service account reads between concurrent admissions without ever handing an
// admission a value read before it arrived: a caller joins the read of its key that has not
// started yet, or starts one; it never joins a read already under way, which may have been
// answered before the change the caller must see (an annotation set right before the pod).
// Concurrent pods of one service account therefore cost at most two reads in sequence, not one
// each.
type freshReads struct {
	mu   sync.Mutex
	keys map[string]*freshKey
}

// freshKey is the state of one key: whether a read is running, and the call that starts when
// it ends (nil when nobody waits for one).
type freshKey struct {
	running bool
	next    *freshCall
}

type freshCall struct {
	done chan struct{}
	sa   *corev1.ServiceAccount
	err  error
}

// errFreshReadTimeout is returned when no read that started after the caller arrived finished
// within the caller's bound.
type errFreshReadTimeout struct{ after time.Duration }

func (e errFreshReadTimeout) Error() string {
	return fmt.Sprintf("no answer from the API server within %s", e.after)
}

// do returns the result of a read of key that started after do was called, waiting at most
// timeout. read runs detached from the caller (other callers share its result).
func (f *freshReads) do(key string, timeout time.Duration, read func() (*corev1.ServiceAccount, error)) (*corev1.ServiceAccount, error) {
	f.mu.Lock()
	if f.keys == nil {
		f.keys = map[string]*freshKey{}
	}
	k := f.keys[key]
	if k == nil {
		k = &freshKey{}
		f.keys[key] = k
	}
	if k.next == nil {
		k.next = &freshCall{done: make(chan struct{})}
	}
	c := k.next
	if !k.running {
		k.running, k.next = true, nil
		go f.run(key, k, c, read)
	}
	f.mu.Unlock()

	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.done:
		return c.sa, c.err
	case <-t.C:
		return nil, errFreshReadTimeout{after: timeout}
	}
}

// run performs c, then the call that gathered waiters meanwhile, until none is left.
func (f *freshReads) run(key string, k *freshKey, c *freshCall, read func() (*corev1.ServiceAccount, error)) {
	for c != nil {
		c.sa, c.err = read()
		close(c.done)
		f.mu.Lock()
		c, k.next = k.next, nil
		if c == nil {
			k.running = false
			delete(f.keys, key)
		}
		f.mu.Unlock()
	}
}

// liveServiceAccount reads the service account from the API server through freshReads, bounded
// by Options.LookupTimeout.
func (h *Handler) liveServiceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	timeout := h.opts.LookupTimeout
	return h.fresh.do(namespace+"/"+name, timeout, func() (*corev1.ServiceAccount, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		return h.client.CoreV1().ServiceAccounts(namespace).Get(ctx, name, getOptions)
	})
}
