package registration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/ekslink/ekslink/iamarn"
)

// Wire constants of RegisterManagedInstance (awsJson1.1, anonymous).
const (
	registerTarget = "AmazonSSM.RegisterManagedInstance"
	jsonContent    = "application/x-amz-json-1.1"
	// PublicKeyType is the only key type the connector registers.
	PublicKeyType = "Rsa"
)

// ClientOptions configure a Client. Zero values are sane defaults.
type ClientOptions struct {
	// Region of the SSM endpoint (required unless Endpoint is set; it still picks the partition).
	Region string
	// Endpoint overrides https://ssm.<region>.<partition DNS suffix> (VPC endpoints, tests).
	Endpoint string
	// HTTPClient sends the requests (default: aws-sdk-go-v2's BuildableClient, which honours
	// HTTPS_PROXY/HTTP_PROXY/NO_PROXY).
	HTTPClient aws.HTTPClient
	// MaxAttempts bounds attempts including the first (default 5).
	MaxAttempts int
	// AttemptTimeout cuts off one attempt (default 15s); a cut-off attempt is retried.
	AttemptTimeout time.Duration
	// Timeout bounds the whole call including retries (default 2m). The caller's context applies too.
	Timeout time.Duration
	// Backoff computes the pause before the next attempt (default: the SDK's exponential jitter
	// backoff, capped at 20s).
	Backoff retry.BackoffDelayer
	// UserAgent is sent as User-Agent (default "ekslink-registration").
	UserAgent string
}

// Client calls SSM RegisterManagedInstance, an anonymous awsJson1.1 operation that is not part of the
// public SDK model.
type Client struct {
	endpoint string
	opts     ClientOptions
}

// NewClient validates opts and returns a Client.
func NewClient(opts ClientOptions) (*Client, error) {
	endpoint := opts.Endpoint
	if endpoint == "" {
		host, err := iamarn.Hostname("ssm", opts.Region, false)
		if err != nil {
			return nil, fmt.Errorf("registration: SSM endpoint: %w", err)
		}
		endpoint = "https://" + host
	} else {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("%w: SSM endpoint %q is not an http(s) URL", ErrInvalidInput, endpoint)
		}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = awshttp.NewBuildableClient()
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 15 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.Backoff == nil {
		opts.Backoff = retry.NewExponentialJitterBackoff(20 * time.Second)
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "ekslink-registration"
	}
	return &Client{endpoint: strings.TrimRight(endpoint, "/") + "/", opts: opts}, nil
}

// Endpoint is the URL requests are sent to.
func (c *Client) Endpoint() string { return c.endpoint }

// RegisterInput is the request of RegisterManagedInstance.
type RegisterInput struct {
	ActivationID   string
	ActivationCode string
	// Fingerprint is the instance fingerprint (a UUIDv4).
	Fingerprint string
	// PublicKey is the standard base64 of the PKIX DER public key.
	PublicKey string
}

func (in RegisterInput) validate() error {
	var problems []string
	if len(in.ActivationID) < 36 {
		problems = append(problems, fmt.Sprintf("activation id must be at least 36 characters (got %d)", len(in.ActivationID)))
	}
	if len(in.ActivationCode) < 20 {
		problems = append(problems, fmt.Sprintf("activation code must be at least 20 characters (got %d)", len(in.ActivationCode)))
	}
	if in.Fingerprint == "" {
		problems = append(problems, "fingerprint is empty")
	}
	if in.PublicKey == "" {
		problems = append(problems, "public key is empty")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidInput, strings.Join(problems, "; "))
	}
	return nil
}

// Registerer registers a managed instance and returns its id; *Client implements it.
type Registerer interface {
	RegisterManagedInstance(ctx context.Context, in RegisterInput) (instanceID string, err error)
}

// RegisterManagedInstance registers the key material and returns the managed instance id
// ("mi-..." or "eks_c:..."). Throttling, TooManyUpdates, 5xx, network errors and cut-off attempts are retried with
// jittered backoff; final codes return at once as *APIError matching ErrActivationExpired etc.
func (c *Client) RegisterManagedInstance(ctx context.Context, in RegisterInput) (string, error) {
	if err := in.validate(); err != nil {
		return "", err
	}
	body, err := json.Marshal(struct {
		ActivationCode string `json:"ActivationCode"`
		ActivationID   string `json:"ActivationId"`
		Fingerprint    string `json:"Fingerprint"`
		PublicKey      string `json:"PublicKey"`
		PublicKeyType  string `json:"PublicKeyType"`
	}{in.ActivationCode, in.ActivationID, in.Fingerprint, in.PublicKey, PublicKeyType})
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var lastErr error
	for attempt := 1; ; attempt++ {
		id, err := c.attempt(ctx, body)
		if err == nil {
			return id, nil
		}
		redactCode(err, in.ActivationCode)
		lastErr = err
		if !retryable(ctx, err) || attempt >= c.opts.MaxAttempts {
			break
		}
		delay, derr := c.opts.Backoff.BackoffDelay(attempt, err)
		if derr != nil {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("registration: RegisterManagedInstance gave up after %d attempts: %w (last error: %v)", attempt, ctx.Err(), lastErr)
		case <-t.C:
		}
	}
	return "", lastErr
}

// redactCode removes the activation code from an error answer's message: AWS validation messages
// quote the offending value ("Value '...' at 'activationCode' failed to satisfy constraint"), and
// the error ends up in logs.
func redactCode(err error, code string) {
	var ae *APIError
	if code != "" && errors.As(err, &ae) {
		ae.Message = strings.ReplaceAll(ae.Message, code, "<activation code>")
	}
}

func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Retryable()
	}
	if errors.Is(err, ErrInvalidInput) {
		return false
	}
	var re *responseError
	if errors.As(err, &re) {
		// A 2xx answer: the registration may well have happened.
		return false
	}
	// Network errors and attempt timeouts (the overall context is still alive).
	return true
}

// instanceIDPattern is SSM's InstanceId pattern, loosened on lengths: "mi-<hex>" for hybrid
// activations and "eks_c:<cluster>_<suffix>" for EKS Connector activations.
var instanceIDPattern = regexp.MustCompile(`^(mi-[0-9A-Za-z]+|eks_c:[0-9A-Za-z][-_0-9A-Za-z]*_[_0-9A-Za-z]+)$`)

// ValidInstanceID reports whether id looks like a managed instance id SSM hands out: "mi-..." or,
// for EKS Connector activations, "eks_c:<cluster>_<suffix>" (at most 124 characters).
func ValidInstanceID(id string) bool {
	return len(id) <= 124 && instanceIDPattern.MatchString(id)
}

// responseError is a 2xx answer that could not be understood. It is final.
type responseError struct{ msg string }

// Error returns the message.
func (e *responseError) Error() string { return e.msg }

func (c *Client) attempt(ctx context.Context, body []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", jsonContent)
	req.Header.Set("X-Amz-Target", registerTarget)
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("registration: RegisterManagedInstance at %s: %w", c.endpoint, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("registration: reading RegisterManagedInstance answer: %w", err)
	}
	reqID := resp.Header.Get("X-Amzn-RequestId")
	if resp.StatusCode/100 != 2 {
		var e struct {
			Type     string `json:"__type"`
			Code     string `json:"code"`
			Message  string `json:"message"`
			MessageU string `json:"Message"`
		}
		_ = json.Unmarshal(raw, &e)
		code := errorCode(e.Type)
		if code == "" {
			code = errorCode(e.Code)
		}
		if code == "" {
			code = errorCode(resp.Header.Get("X-Amzn-ErrorType"))
		}
		if code == "" {
			code = http.StatusText(resp.StatusCode)
		}
		msg := e.Message
		if msg == "" {
			msg = e.MessageU
		}
		return "", &APIError{StatusCode: resp.StatusCode, Code: code, Message: msg, RequestID: reqID}
	}
	var out struct {
		InstanceID string `json:"InstanceId"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || !ValidInstanceID(out.InstanceID) {
		// Not retried: a 2xx means SSM registered the material, and another attempt would burn
		// another registration of the activation.
		return "", &responseError{msg: fmt.Sprintf("registration: unexpected RegisterManagedInstance answer (HTTP %d, %d bytes, request id %q): want {\"InstanceId\":\"mi-...\" or \"eks_c:...\"}; SSM may have registered the key material", resp.StatusCode, len(raw), reqID)}
	}
	return out.InstanceID, nil
}
