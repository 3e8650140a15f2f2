package podidentity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/ekslink/ekslink/iamarn"
	"github.com/ekslink/ekslink/internal/awsjson"
)

// AuthSigningName is the SigV4 signing name of the EKS Auth API.
const AuthSigningName = "eks-auth"

// AuthEndpointEnv is the environment variable that overrides the EKS Auth endpoint, as in the AWS SDKs
// (service-specific endpoint for the SDK ID "EKS Auth").
const AuthEndpointEnv = "AWS_ENDPOINT_URL_EKS_AUTH"

// Defaults of Options.
const (
	// AuthDefaultAttemptTimeout bounds one HTTP attempt (connect, send, read the answer).
	AuthDefaultAttemptTimeout = 5 * time.Second
	// AuthMaxResponseBytes bounds the body read from EKS Auth.
	AuthMaxResponseBytes = 1 << 20
	// AuthMaxTokenBytes is the largest service account token the client sends.
	AuthMaxTokenBytes = 64 << 10
)

// Options configure a Client, as the Options of an aws-sdk-go-v2 service client do: NewFromConfig
// fills them from the aws.Config, then applies the caller's functions. Zero values take what the
// aws.Config holds.
type Options struct {
	// Region overrides the aws.Config region (the region of the cluster).
	Region string
	// BaseEndpoint overrides the endpoint entirely ("https://host[:port]"). When nil the client uses
	// AWS_ENDPOINT_URL_EKS_AUTH, then aws.Config.BaseEndpoint, then https://eks-auth.<region>.<dual-stack
	// DNS suffix of the partition>, which is where EKS Auth lives.
	BaseEndpoint *string
	// UseFIPS selects the FIPS endpoint (eks-auth-fips.<region>...) when the endpoint is resolved.
	UseFIPS bool
	// HTTPClient sends the requests (default aws.Config.HTTPClient, else the SDK's buildable client).
	HTTPClient aws.HTTPClient
	// Retryer decides retries and backoff (default aws.Config.Retryer(), else retry.NewStandard(),
	// which retries throttling, 5xx and connection errors with jittered exponential backoff).
	Retryer aws.Retryer
	// AttemptTimeout bounds each attempt (default AuthDefaultAttemptTimeout). A negative value
	// disables the per-attempt bound (the caller's context still applies).
	AttemptTimeout time.Duration
	// Now is the signing clock (default time.Now).
	Now func() time.Time
	// UserAgent is appended to the User-Agent header.
	UserAgent string

	// lookupEnv reads AWS_ENDPOINT_URL_EKS_AUTH and AWS_IGNORE_CONFIGURED_ENDPOINT_URLS (default
	// os.LookupEnv); tests replace it (export_test.go). Embedders that must not follow the
	// environment set BaseEndpoint, which wins over it.
	lookupEnv func(string) (string, bool)
}

// Client calls the EKS Auth API (AssumeRoleForPodIdentity). It is safe for concurrent use and is
// the Upstream of a Server.
type Client struct {
	creds       aws.CredentialsProvider
	region      string
	endpoint    *url.URL
	caller      *awsjson.Caller
	now         func() time.Time
	signer      *v4.Signer
	userAgent   string
	endpointSrc string
}

// NewFromConfig builds a Client from an aws.Config (the node's credentials and region, usually from
// config.LoadDefaultConfig), then applies optFns in order. Unlike the SDK's constructors it returns
// an error: it fails when no region or credentials are configured or when the endpoint cannot be
// resolved, because a client without them could only fail later, on every pod's first request.
func NewFromConfig(cfg aws.Config, optFns ...func(*Options)) (*Client, error) {
	opts := Options{Region: cfg.Region, HTTPClient: cfg.HTTPClient}
	if cfg.Retryer != nil {
		opts.Retryer = cfg.Retryer()
	}
	for _, fn := range optFns {
		fn(&opts)
	}
	region := opts.Region
	if region == "" {
		return nil, fmt.Errorf("podidentity: no region for EKS Auth: set AWS_REGION or Options.Region to the cluster's region")
	}
	if cfg.Credentials == nil {
		return nil, fmt.Errorf("podidentity: no AWS credentials in aws.Config: EKS Auth requests must be signed (node role credentials)")
	}
	lookup := opts.lookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	endpoint, src, err := authAPIResolveEndpoint(cfg, opts, region, lookup)
	if err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = awshttp.NewBuildableClient()
	}
	r := opts.Retryer
	if r == nil {
		r = retry.NewStandard()
	}
	to := opts.AttemptTimeout
	if to == 0 {
		to = AuthDefaultAttemptTimeout
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ua := "ekslink-podidentity"
	if opts.UserAgent != "" {
		ua += " " + opts.UserAgent
	}
	c := &Client{
		creds:       cfg.Credentials,
		region:      region,
		endpoint:    endpoint,
		now:         now,
		signer:      v4.NewSigner(),
		userAgent:   ua,
		endpointSrc: src,
	}
	c.caller = &awsjson.Caller{HTTPClient: hc, Retryer: r, AttemptTimeout: to, MaxResponseBytes: AuthMaxResponseBytes, Wrap: c.wrapTransport}
	return c, nil
}

// Endpoint is the resolved EKS Auth endpoint URL.
func (c *Client) Endpoint() string { return c.endpoint.String() }

// Region is the signing region.
func (c *Client) Region() string { return c.region }

func authAPIResolveEndpoint(cfg aws.Config, opts Options, region string, lookup func(string) (string, bool)) (*url.URL, string, error) {
	var raw, src string
	if opts.BaseEndpoint != nil && *opts.BaseEndpoint != "" {
		raw, src = *opts.BaseEndpoint, "Options.BaseEndpoint"
	}
	ignore := false
	if v, ok := lookup("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"); ok && strings.EqualFold(strings.TrimSpace(v), "true") {
		ignore = true
	}
	if raw == "" && !ignore {
		if v, ok := lookup(AuthEndpointEnv); ok && v != "" {
			raw, src = v, AuthEndpointEnv
		}
	}
	if raw == "" && cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != "" {
		raw, src = *cfg.BaseEndpoint, "aws.Config.BaseEndpoint"
	}
	if raw == "" {
		p, err := iamarn.PartitionForRegion(region)
		if err != nil {
			return nil, "", fmt.Errorf("podidentity: resolving the EKS Auth endpoint: %w", err)
		}
		if p.DualStackDNSSuffix == "" {
			return nil, "", fmt.Errorf("podidentity: no known EKS Auth endpoint for region %s (partition %s): set %s or Options.BaseEndpoint", region, p.ID, AuthEndpointEnv)
		}
		host := "eks-auth"
		if opts.UseFIPS {
			host = "eks-auth-fips"
		}
		raw, src = "https://"+host+"."+region+"."+p.DualStackDNSSuffix, "partition"
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, "", fmt.Errorf("podidentity: EKS Auth endpoint %q from %s is not an http(s) URL with a host", raw, src)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u, src, nil
}

// AssumeRoleForPodIdentityOutput is the answer of AssumeRoleForPodIdentity.
type AssumeRoleForPodIdentityOutput struct {
	// Credentials are the temporary credentials of the associated IAM role.
	Credentials AuthCredentials
	// AssumedRoleUser is the STS identity of the session.
	AssumedRoleUser AuthAssumedRoleUser
	// Subject is the Kubernetes service account the token belongs to.
	Subject AuthSubject
	// Audience is the audience of the token as EKS Auth validated it.
	Audience string
	// PodIdentityAssociation identifies the association that granted the role.
	PodIdentityAssociation PodIdentityAssociation
}

// AuthCredentials are temporary AWS credentials.
type AuthCredentials struct {
	// AccessKeyID is the temporary access key id (ASIA...).
	AccessKeyID string
	// SecretAccessKey is the secret key; never log it.
	SecretAccessKey string
	// SessionToken is the STS session token; never log it.
	SessionToken string
	// Expiration is when the credentials stop working.
	Expiration time.Time
}

// AuthAssumedRoleUser is the assumed-role identity of the credentials.
type AuthAssumedRoleUser struct {
	// ARN is the assumed-role ARN (arn:aws:sts::<account>:assumed-role/<role>/<session>).
	ARN string
	// AssumeRoleID is the role id and session name (AROA...:session).
	AssumeRoleID string
}

// AuthSubject is the service account a token was issued to.
type AuthSubject struct {
	// Namespace of the service account.
	Namespace string
	// ServiceAccount is the service account name.
	ServiceAccount string
}

// PodIdentityAssociation identifies an EKS Pod Identity association.
type PodIdentityAssociation struct {
	// AssociationARN is the association's ARN.
	AssociationARN string
	// AssociationID is the association's id (a-...).
	AssociationID string
}

// AuthErrorCode is an EKS Auth exception name. It is itself an error so that callers can test
// errors.Is(err, podidentity.AuthThrottlingException).
type AuthErrorCode string

// The documented EKS Auth exceptions of AssumeRoleForPodIdentity. EKS Auth answers
// AccessDenied, ExpiredToken, InvalidParameter, InvalidRequest and InvalidToken with HTTP 400,
// ResourceNotFound 404, Throttling 429, InternalServer 500, ServiceUnavailable 503: match on the
// code, never on the status.
const (
	AuthInvalidTokenException       AuthErrorCode = "InvalidTokenException"
	AuthExpiredTokenException       AuthErrorCode = "ExpiredTokenException"
	AuthAccessDeniedException       AuthErrorCode = "AccessDeniedException"
	AuthResourceNotFoundException   AuthErrorCode = "ResourceNotFoundException"
	AuthThrottlingException         AuthErrorCode = "ThrottlingException"
	AuthInvalidRequestException     AuthErrorCode = "InvalidRequestException"
	AuthInternalServerException     AuthErrorCode = "InternalServerException"
	AuthServiceUnavailableException AuthErrorCode = "ServiceUnavailableException"
	AuthInvalidParameterException   AuthErrorCode = "InvalidParameterException"
)

// Error implements error.
func (c AuthErrorCode) Error() string { return "podidentity: " + string(c) }

// AuthError is an error answer of EKS Auth. It implements smithy.APIError, so the SDK's retryers
// classify it (throttling codes, HTTP status), and matches its AuthErrorCode with errors.Is.
type AuthError struct {
	// Code is the exception name (x-amzn-ErrorType without namespace or URL).
	Code AuthErrorCode
	// Message is the service's message.
	Message string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// RequestID is the x-amzn-RequestId of the answer.
	RequestID string
	// RetryAfter is the Retry-After hint of the answer, if any.
	RetryAfter time.Duration
	// ClientMessage, when set, is sent to the pod instead of the server's generic text for the
	// code. Backends other than EKS Auth set it to say what they found (no association for
	// <namespace>/<serviceAccount>, the pod is gone); it must never contain token material. The EKS
	// Auth client never sets it.
	ClientMessage string
}

// Error implements error.
func (e *AuthError) Error() string {
	msg := fmt.Sprintf("podidentity: AssumeRoleForPodIdentity: %s (HTTP %d)", e.Code, e.StatusCode)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RequestID != "" {
		msg += " (request id " + e.RequestID + ")"
	}
	return msg
}

// Is reports whether target is this error's AuthErrorCode.
func (e *AuthError) Is(target error) bool {
	c, ok := target.(AuthErrorCode)
	return ok && c == e.Code
}

// ErrorCode implements smithy.APIError.
func (e *AuthError) ErrorCode() string { return string(e.Code) }

// ErrorMessage implements smithy.APIError.
func (e *AuthError) ErrorMessage() string { return e.Message }

// ErrorFault implements smithy.APIError.
func (e *AuthError) ErrorFault() smithy.ErrorFault {
	if e.StatusCode >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// HTTPStatusCode lets the SDK retryers classify the error by status.
func (e *AuthError) HTTPStatusCode() int { return e.StatusCode }

// RetryAfterHint is the server's Retry-After; the client waits for it between attempts when it is
// longer than the retryer's delay (at most 20s).
func (e *AuthError) RetryAfterHint() time.Duration { return e.RetryAfter }

// AuthAttemptTimeoutError reports that an attempt (or all of them) ran into the per-attempt timeout.
type AuthAttemptTimeoutError struct {
	// Limit is the per-attempt timeout that expired.
	Limit time.Duration
	// Err is the transport error.
	Err error
}

// Error implements error.
func (e *AuthAttemptTimeoutError) Error() string {
	return fmt.Sprintf("podidentity: AssumeRoleForPodIdentity: no answer within %s: %v", e.Limit, e.Err)
}

// Unwrap returns the underlying error.
func (e *AuthAttemptTimeoutError) Unwrap() error { return e.Err }

// Timeout marks the error as a timeout (the SDK retryers retry it).
func (e *AuthAttemptTimeoutError) Timeout() bool { return true }

var authAPIClusterName = regexp.MustCompile(`^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$`)

// AssumeRoleForPodIdentity exchanges a service account token for the credentials of the IAM role
// associated with it. Throttling, 5xx, connection errors and attempt timeouts are retried as the
// retryer decides; EKS Auth exceptions come back as *AuthError.
func (c *Client) AssumeRoleForPodIdentity(ctx context.Context, clusterName, token string) (*AssumeRoleForPodIdentityOutput, error) {
	if !authAPIClusterName.MatchString(clusterName) {
		return nil, fmt.Errorf("podidentity: cluster name %q is not a valid EKS cluster name (1-100 letters, digits, - and _)", clusterName)
	}
	if token == "" || len(token) > AuthMaxTokenBytes {
		return nil, fmt.Errorf("podidentity: service account token is empty or longer than %d bytes", AuthMaxTokenBytes)
	}
	body, err := json.Marshal(struct {
		Token string `json:"token"`
	}{token})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])

	u := *c.endpoint
	u.Path = c.endpoint.Path + "/clusters/" + clusterName + "/assume-role-for-pod-identity"
	u.RawPath = ""

	req := awsjson.Request{
		URL:    u.String(),
		Header: http.Header{"Content-Type": {"application/json"}, "User-Agent": {c.userAgent}},
		Body:   body,
		Sign: func(ctx context.Context, req *http.Request) error {
			creds, err := c.creds.Retrieve(ctx)
			if err != nil {
				return fmt.Errorf("podidentity: retrieving the credentials to sign with: %w", err)
			}
			if err := c.signer.SignHTTP(ctx, creds, req, payloadHash, AuthSigningName, c.region, c.now().UTC()); err != nil {
				return fmt.Errorf("podidentity: signing: %w", err)
			}
			return nil
		},
	}
	var out *AssumeRoleForPodIdentityOutput
	err = c.caller.Do(ctx, req, func(resp *awsjson.Response) error {
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return authAPIDecodeError(resp)
		}
		var derr error
		out, derr = authAPIDecodeOutput(resp.Body)
		return derr
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// wrapTransport gives the core's transport errors this package's wording and types.
func (c *Client) wrapTransport(err error) error {
	var te *awsjson.AttemptTimeoutError
	if errors.As(err, &te) {
		return &AuthAttemptTimeoutError{Limit: te.Limit, Err: te.Err}
	}
	return fmt.Errorf("podidentity: AssumeRoleForPodIdentity: %w", err)
}

func authAPIDecodeError(resp *awsjson.Response) error {
	info := awsjson.ParseError(awsjson.RestJSON1, resp)
	code := info.Code
	if code == "" {
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			code = string(AuthThrottlingException)
		case resp.StatusCode == http.StatusServiceUnavailable:
			code = string(AuthServiceUnavailableException)
		case resp.StatusCode >= 500:
			code = string(AuthInternalServerException)
		default:
			code = "UnknownError"
		}
	}
	msg := info.Message
	if len(msg) > 512 {
		msg = msg[:512]
	}
	return &AuthError{Code: AuthErrorCode(code), Message: msg, StatusCode: resp.StatusCode, RequestID: info.RequestID, RetryAfter: info.RetryAfter}
}

func authAPIDecodeOutput(data []byte) (*AssumeRoleForPodIdentityOutput, error) {
	var doc struct {
		Subject *struct {
			Namespace      string `json:"namespace"`
			ServiceAccount string `json:"serviceAccount"`
		} `json:"subject"`
		Audience               string `json:"audience"`
		PodIdentityAssociation *struct {
			AssociationArn string `json:"associationArn"`
			AssociationID  string `json:"associationId"`
		} `json:"podIdentityAssociation"`
		AssumedRoleUser *struct {
			Arn          string `json:"arn"`
			AssumeRoleID string `json:"assumeRoleId"`
		} `json:"assumedRoleUser"`
		Credentials *struct {
			SessionToken    string          `json:"sessionToken"`
			SecretAccessKey string          `json:"secretAccessKey"`
			AccessKeyID     string          `json:"accessKeyId"`
			Expiration      json.RawMessage `json:"expiration"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("podidentity: AssumeRoleForPodIdentity: answer is not JSON: %w", err)
	}
	cr := doc.Credentials
	if cr == nil || cr.AccessKeyID == "" || cr.SecretAccessKey == "" || cr.SessionToken == "" || len(cr.Expiration) == 0 {
		return nil, fmt.Errorf("podidentity: AssumeRoleForPodIdentity: answer has no complete credentials (accessKeyId, secretAccessKey, sessionToken, expiration)")
	}
	exp, err := authAPIParseTimestamp(cr.Expiration)
	if err != nil {
		return nil, err
	}
	out := &AssumeRoleForPodIdentityOutput{
		Credentials: AuthCredentials{AccessKeyID: cr.AccessKeyID, SecretAccessKey: cr.SecretAccessKey, SessionToken: cr.SessionToken, Expiration: exp},
		Audience:    doc.Audience,
	}
	if s := doc.Subject; s != nil {
		out.Subject = AuthSubject{Namespace: s.Namespace, ServiceAccount: s.ServiceAccount}
	}
	if a := doc.PodIdentityAssociation; a != nil {
		out.PodIdentityAssociation = PodIdentityAssociation{AssociationARN: a.AssociationArn, AssociationID: a.AssociationID}
	}
	if u := doc.AssumedRoleUser; u != nil {
		out.AssumedRoleUser = AuthAssumedRoleUser{ARN: u.Arn, AssumeRoleID: u.AssumeRoleID}
	}
	return out, nil
}

// authAPIParseTimestamp reads a restJson1 timestamp: epoch seconds (possibly fractional); an RFC 3339
// string is accepted too because some emulators send it.
func authAPIParseTimestamp(raw json.RawMessage) (time.Time, error) {
	var str string
	if json.Unmarshal(raw, &str) == nil {
		if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
			return t.UTC(), nil
		}
		raw = json.RawMessage(str)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return time.Time{}, fmt.Errorf("podidentity: credentials expiration %.40q is neither epoch seconds nor RFC 3339", raw)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)).UTC(), nil
}
