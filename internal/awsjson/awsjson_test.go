package awsjson

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// The error shapes are those of the Smithy AWS protocol specifications (awsJson1_1 and restJson1
// "Operation error serialization"): the code may carry a namespace ("ns#Code") and a URL suffix
// ("Code:http://..."), awsJson1.1 reads the body's __type first, restJson1 the X-Amzn-ErrorType header.
func TestParseErrorFollowsEachProtocolsPrecedence(t *testing.T) {
	resp := &Response{StatusCode: 400, Header: http.Header{
		"X-Amzn-Errortype": {"ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.service/"},
		"X-Amzn-Requestid": {"req-1"}, "Retry-After": {"3"}},
		Body: []byte(`{"__type":"com.amazonaws.ssm#ActivationExpired","Message":"expired"}`)}
	j := ParseError(JSON11, resp)
	if j.Code != "ActivationExpired" || j.Message != "expired" || j.RequestID != "req-1" || j.RetryAfter != 3*time.Second {
		t.Errorf("awsJson1.1: %+v", j)
	}
	if r := ParseError(RestJSON1, resp); r.Code != "ThrottlingException" {
		t.Errorf("restJson1: code %q, want the header's ThrottlingException", r.Code)
	}
	none := ParseError(JSON11, &Response{StatusCode: 500, Header: http.Header{}, Body: []byte("<html>")})
	if none.Code != "" || none.Message != "" || none.RetryAfter != 0 {
		t.Errorf("no code: %+v", none)
	}
	if got := SanitizeCode(" aws.protocoltests#FooError:http://x#y "); got != "FooError" {
		t.Errorf("SanitizeCode = %q", got)
	}
}

// statusError is a decoded error the SDK's retryers classify by status, as the clients' errors do.
type statusError struct{ status int }

func (e *statusError) Error() string       { return http.StatusText(e.status) }
func (e *statusError) HTTPStatusCode() int { return e.status }

// countingRetryer records the token calls the SDK's standard retryer expects of a caller.
type countingRetryer struct {
	aws.RetryerV2
	attemptTokens, retryTokens, releases atomic.Int32
}

func (r *countingRetryer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	r.attemptTokens.Add(1)
	rel, err := r.RetryerV2.GetAttemptToken(ctx)
	return func(err error) error { r.releases.Add(1); return rel(err) }, err
}

func (r *countingRetryer) GetRetryToken(ctx context.Context, opErr error) (func(error) error, error) {
	r.retryTokens.Add(1)
	rel, err := r.RetryerV2.GetRetryToken(ctx, opErr)
	return func(err error) error { r.releases.Add(1); return rel(err) }, err
}

func standard(attempts int) *countingRetryer {
	return &countingRetryer{RetryerV2: retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
	})}
}

func decodeStatus(resp *Response) error {
	if resp.StatusCode != http.StatusOK {
		return &statusError{resp.StatusCode}
	}
	return nil
}

func TestDoRetriesThroughTheRetryersTokens(t *testing.T) {
	var calls atomic.Int32
	var sawHeader atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawHeader.Store(r.Header.Get("X-Amz-Target") == "Svc.Op" && r.Header.Get("X-Signed") == "yes")
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	r := standard(5)
	c := &Caller{HTTPClient: srv.Client(), Retryer: r}
	req := Request{URL: srv.URL, Header: http.Header{"X-Amz-Target": {"Svc.Op"}}, Body: []byte(`{}`),
		Sign: func(_ context.Context, req *http.Request) error { req.Header.Set("X-Signed", "yes"); return nil }}
	if err := c.Do(context.Background(), req, decodeStatus); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || r.attemptTokens.Load() != 3 || r.retryTokens.Load() != 2 || r.releases.Load() != 5 {
		t.Errorf("%d calls, %d attempt tokens, %d retry tokens, %d releases; want 3, 3, 2, 5",
			calls.Load(), r.attemptTokens.Load(), r.retryTokens.Load(), r.releases.Load())
	}
	if !sawHeader.Load() {
		t.Error("the request's header and signature did not reach the server")
	}

	// A final status is not retried; a retryable one stops at the retryer's MaxAttempts.
	calls.Store(-100)
	err := (&Caller{HTTPClient: srv.Client(), Retryer: standard(2)}).Do(context.Background(), req, decodeStatus)
	var mae *retry.MaxAttemptsError
	if !errors.As(err, &mae) || mae.Attempt != 2 || calls.Load() != -98 {
		t.Errorf("max attempts: %v after %d calls", err, calls.Load()+100)
	}
	err = (&Caller{HTTPClient: srv.Client(), Retryer: standard(5)}).Do(context.Background(), req, func(*Response) error { return &statusError{400} })
	var se *statusError
	if !errors.As(err, &se) || errors.As(err, &mae) || calls.Load() != -97 {
		t.Errorf("final: %v after %d calls", err, calls.Load()+100)
	}
}

func TestDoCutsOffAHangingAttemptAndRetriesIt(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-r.Context().Done()
	}))
	defer srv.Close()
	wrapped := 0
	c := &Caller{HTTPClient: srv.Client(), Retryer: standard(2), AttemptTimeout: 50 * time.Millisecond,
		Wrap: func(err error) error { wrapped++; return err }}
	start := time.Now()
	err := c.Do(context.Background(), Request{URL: srv.URL}, decodeStatus)
	var te *AttemptTimeoutError
	if !errors.As(err, &te) || te.Limit != 50*time.Millisecond || calls.Load() != 2 || wrapped != 2 {
		t.Fatalf("%v after %d calls, %d wrapped", err, calls.Load(), wrapped)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}
