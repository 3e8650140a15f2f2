package awsjson

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// DefaultMaxResponseBytes bounds the answer body when Caller.MaxResponseBytes is zero.
const DefaultMaxResponseBytes = 1 << 20

// Caller sends JSON requests with retries. Its fields are set once by the client that owns it; it is
// safe for concurrent use.
type Caller struct {
	// HTTPClient sends the requests (required).
	HTTPClient aws.HTTPClient
	// Retryer decides whether and when to retry (required).
	Retryer aws.Retryer
	// AttemptTimeout bounds each attempt, from signing to the last byte of the answer; zero or
	// negative means no per-attempt bound.
	AttemptTimeout time.Duration
	// MaxResponseBytes bounds the answer body (default DefaultMaxResponseBytes); a longer answer
	// is an error that is not retried.
	MaxResponseBytes int64
	// Wrap, when set, rewrites each attempt's own failures (*AttemptTimeoutError, *ConnectionError,
	// an oversized answer) before the retryer sees them, so that a client can return its own types
	// and wording. Errors of Request.Sign and of the decoder are passed on as they are.
	Wrap func(error) error
}

// Request is one operation call.
type Request struct {
	// URL is the full request URL.
	URL string
	// Header is copied into each attempt's request.
	Header http.Header
	// Body is the JSON document sent.
	Body []byte
	// Sign, when set, signs each attempt's request (SigV4); it runs under the attempt's deadline.
	Sign func(ctx context.Context, req *http.Request) error
}

// Response is a complete answer.
type Response struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Header is the answer's header.
	Header http.Header
	// Body is the answer's body (at most MaxResponseBytes).
	Body []byte
}

// AttemptTimeoutError reports that an attempt ran into Caller.AttemptTimeout. The SDK's retryers
// retry it (Timeout).
type AttemptTimeoutError struct {
	// Limit is the per-attempt timeout.
	Limit time.Duration
	// Err is the transport error.
	Err error
}

// Error implements error.
func (e *AttemptTimeoutError) Error() string {
	return fmt.Sprintf("no answer within %s: %v", e.Limit, e.Err)
}

// Unwrap returns the transport error.
func (e *AttemptTimeoutError) Unwrap() error { return e.Err }

// Timeout marks the error as a timeout for the SDK's retryers.
func (e *AttemptTimeoutError) Timeout() bool { return true }

// ConnectionError is a failure to send the request or read the answer. The SDK's retryers retry it.
type ConnectionError struct {
	// Op says what failed ("sending to host", "reading the answer").
	Op string
	// Err is the transport error.
	Err error
}

// Error implements error.
func (e *ConnectionError) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns the transport error.
func (e *ConnectionError) Unwrap() error { return e.Err }

// ConnectionError marks the error as a connection error for the SDK's retryers.
func (e *ConnectionError) ConnectionError() bool { return true }

// RetryAfterer is implemented by decoded errors that carry a server hint (Retry-After); Do waits
// for the hint when it is longer than the retryer's delay and at most 20s.
type RetryAfterer interface {
	RetryAfterHint() time.Duration
}

// maxRetryAfter caps the server's Retry-After hint.
const maxRetryAfter = 20 * time.Second

// Do calls the operation: each attempt sends req and passes the complete answer to decode, whose
// error (a decoded API error, or nil) goes to the retryer. It stops at the first success, at an
// error the retryer does not retry, when the retryer's attempts are used up (*retry.MaxAttemptsError)
// or when ctx ends.
func (c *Caller) Do(ctx context.Context, req Request, decode func(*Response) error) error {
	maxAttempts := c.Retryer.MaxAttempts()
	releaseRetry := func(error) error { return nil }
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var releaseAttempt func(error) error
		if r2, ok := c.Retryer.(aws.RetryerV2); ok {
			var err error
			if releaseAttempt, err = r2.GetAttemptToken(ctx); err != nil {
				return fmt.Errorf("retry quota: %w", err)
			}
		} else {
			releaseAttempt = c.Retryer.GetInitialToken()
		}
		err := c.attempt(ctx, req, decode)
		_ = releaseRetry(err)
		_ = releaseAttempt(err)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !c.Retryer.IsErrorRetryable(err) {
			return err
		}
		if maxAttempts > 0 && attempt >= maxAttempts {
			return &retry.MaxAttemptsError{Attempt: attempt, Err: err}
		}
		var qerr error
		if releaseRetry, qerr = c.Retryer.GetRetryToken(ctx, err); qerr != nil {
			return errors.Join(err, qerr)
		}
		delay, derr := c.Retryer.RetryDelay(attempt, err)
		if derr != nil {
			return errors.Join(err, derr)
		}
		var ra RetryAfterer
		if errors.As(err, &ra) {
			if h := ra.RetryAfterHint(); h > delay && h <= maxRetryAfter {
				delay = h
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

func (c *Caller) attempt(ctx context.Context, r Request, decode func(*Response) error) error {
	actx := ctx
	if c.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, c.AttemptTimeout)
		defer cancel()
	}
	timedOut := func() bool { return actx.Err() == context.DeadlineExceeded && ctx.Err() == nil }
	req, err := http.NewRequestWithContext(actx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return err
	}
	for k, v := range r.Header {
		req.Header[k] = append([]string(nil), v...)
	}
	req.ContentLength = int64(len(r.Body))
	if r.Sign != nil {
		if err := r.Sign(actx, req); err != nil {
			if timedOut() {
				return c.wrap(&AttemptTimeoutError{Limit: c.AttemptTimeout, Err: err})
			}
			return err
		}
	}
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		if timedOut() {
			return c.wrap(&AttemptTimeoutError{Limit: c.AttemptTimeout, Err: err})
		}
		return c.wrap(&ConnectionError{Op: "sending to " + req.URL.Host, Err: err})
	}
	defer resp.Body.Close()
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = DefaultMaxResponseBytes
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if timedOut() {
			return c.wrap(&AttemptTimeoutError{Limit: c.AttemptTimeout, Err: err})
		}
		return c.wrap(&ConnectionError{Op: "reading the answer", Err: err})
	}
	if actx.Err() != nil {
		// The deadline passed while the answer arrived: it may be truncated, so it is not trusted.
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.wrap(&AttemptTimeoutError{Limit: c.AttemptTimeout, Err: actx.Err()})
	}
	if int64(len(data)) > limit {
		return c.wrap(fmt.Errorf("answer larger than %d bytes", limit))
	}
	return decode(&Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: data})
}

func (c *Caller) wrap(err error) error {
	if c.Wrap != nil {
		return c.Wrap(err)
	}
	return err
}
