package registration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/ekslink/ekslink/iamarn"
	"github.com/ekslink/ekslink/internal/awsjson"
)

// Wire constants of RegisterManagedInstance (awsJson1.1, anonymous).
const (
	registerTarget = "AmazonSSM.RegisterManagedInstance"
	jsonContent    = "application/x-amz-json-1.1"
	// PublicKeyType is the only key type the connector registers.
	PublicKeyType = "Rsa"
)

// Defaults of ClientOptions.
const (
	// DefaultMaxAttempts is the attempts of the default retryer, the first included.
	DefaultMaxAttempts = 5
	// DefaultAttemptTimeout cuts off one attempt; a cut-off attempt is retried.
	DefaultAttemptTimeout = 15 * time.Second
	// DefaultTimeout bounds the whole call including retries.
	DefaultTimeout = 2 * time.Minute
)

// ClientOptions configure a Client, as the Options of an aws-sdk-go-v2 service client do:
// NewFromConfig fills them from the aws.Config, then applies the caller's functions. (The name
// Options belongs to the Registrar.)
type ClientOptions struct {
	// Region of the SSM endpoint (default aws.Config.Region; required unless an endpoint is set, and
	// it still picks the partition).
	Region string
	// BaseEndpoint overrides the endpoint ("https://host[:port]": VPC endpoints, tests). When nil the
	// client uses aws.Config.BaseEndpoint, then https://ssm.<region>.<partition DNS suffix>.
	BaseEndpoint *string
	// HTTPClient sends the requests (default aws.Config.HTTPClient, else aws-sdk-go-v2's
	// BuildableClient, which honours HTTPS_PROXY/HTTP_PROXY/NO_PROXY).
	HTTPClient aws.HTTPClient
	// Retryer decides retries and backoff (default aws.Config.Retryer(), else retry.NewStandard
	// with aws.Config.RetryMaxAttempts or DefaultMaxAttempts attempts and its jittered backoff
	// capped at 20s). Throttling,
	// TooManyUpdates, 5xx, 429, network errors and cut-off attempts are retryable: *APIError says so
	// through RetryableError, which the SDK's standard retryer asks first.
	Retryer aws.Retryer
	// AttemptTimeout cuts off one attempt (default DefaultAttemptTimeout); a cut-off attempt is retried.
	AttemptTimeout time.Duration
	// Timeout bounds the whole call including retries (default DefaultTimeout). The caller's
	// context applies too.
	Timeout time.Duration
	// UserAgent is sent as User-Agent (default "ekslink-registration").
	UserAgent string
}

// Client calls SSM RegisterManagedInstance, an anonymous awsJson1.1 operation that is not part of the
// public SDK model.
type Client struct {
	endpoint  string
	userAgent string
	timeout   time.Duration
	caller    *awsjson.Caller
}

// NewFromConfig builds a Client from an aws.Config (only its region, endpoint, HTTP client and
// retryer are used: the operation is anonymous), then applies optFns in order. Unlike the SDK's
// constructors it returns an error: it fails when no region or endpoint is configured or when the
// endpoint is not an http(s) URL.
func NewFromConfig(cfg aws.Config, optFns ...func(*ClientOptions)) (*Client, error) {
	opts := ClientOptions{Region: cfg.Region, HTTPClient: cfg.HTTPClient}
	if cfg.Retryer != nil {
		opts.Retryer = cfg.Retryer()
	}
	for _, fn := range optFns {
		fn(&opts)
	}
	var endpoint string
	switch {
	case opts.BaseEndpoint != nil && *opts.BaseEndpoint != "":
		endpoint = *opts.BaseEndpoint
	case cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != "":
		endpoint = *cfg.BaseEndpoint
	}
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
	if opts.Retryer == nil {
		attempts := DefaultMaxAttempts
		if cfg.RetryMaxAttempts > 0 {
			attempts = cfg.RetryMaxAttempts
		}
		opts.Retryer = retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = attempts })
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = DefaultAttemptTimeout
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "ekslink-registration"
	}
	c := &Client{endpoint: strings.TrimRight(endpoint, "/") + "/", userAgent: opts.UserAgent, timeout: opts.Timeout}
	c.caller = &awsjson.Caller{HTTPClient: opts.HTTPClient, Retryer: opts.Retryer, AttemptTimeout: opts.AttemptTimeout,
		Wrap: func(err error) error {
			return fmt.Errorf("registration: RegisterManagedInstance at %s: %w", c.endpoint, err)
		}}
	return c, nil
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
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req := awsjson.Request{URL: c.endpoint, Body: body, Header: http.Header{
		"Content-Type": {jsonContent}, "X-Amz-Target": {registerTarget}, "User-Agent": {c.userAgent}}}
	var id string
	err = c.caller.Do(ctx, req, func(resp *awsjson.Response) error {
		var derr error
		id, derr = decodeRegisterAnswer(resp)
		redactCode(derr, in.ActivationCode)
		return derr
	})
	if err != nil {
		return "", err
	}
	return id, nil
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

func decodeRegisterAnswer(resp *awsjson.Response) (string, error) {
	if resp.StatusCode/100 != 2 {
		info := awsjson.ParseError(awsjson.JSON11, resp)
		code := info.Code
		if code == "" {
			code = http.StatusText(resp.StatusCode)
		}
		return "", &APIError{StatusCode: resp.StatusCode, Code: code, Message: info.Message, RequestID: info.RequestID}
	}
	var out struct {
		InstanceID string `json:"InstanceId"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil || !ValidInstanceID(out.InstanceID) {
		// Not retried: a 2xx means SSM registered the material, and another attempt would burn
		// another registration of the activation.
		return "", &responseError{msg: fmt.Sprintf("registration: unexpected RegisterManagedInstance answer (HTTP %d, %d bytes, request id %q): want {\"InstanceId\":\"mi-...\" or \"eks_c:...\"}; SSM may have registered the key material", resp.StatusCode, len(resp.Body), resp.Header.Get("X-Amzn-RequestId"))}
	}
	return out.InstanceID, nil
}
