package registration

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/smithy-go"
)

// Final errors of RegisterManagedInstance, matched with errors.Is. Retrying them cannot help.
var (
	// ErrInvalidActivation: the activation id/code pair is unknown or wrong.
	ErrInvalidActivation = errors.New("registration: invalid activation")
	// ErrActivationExpired: the activation is past its expiry.
	ErrActivationExpired = errors.New("registration: activation expired")
	// ErrRegistrationLimitExceeded: the activation's registration limit is used up.
	ErrRegistrationLimitExceeded = errors.New("registration: activation registration limit exceeded")
	// ErrInvalidPublicKey: SSM refused the public key.
	ErrInvalidPublicKey = errors.New("registration: public key refused")
	// ErrInstanceAlreadyRegistered: this key material/fingerprint is registered already.
	ErrInstanceAlreadyRegistered = errors.New("registration: instance already registered")
	// ErrInvalidInput: the request was refused locally before it was sent.
	ErrInvalidInput = errors.New("registration: invalid input")
)

var finalCodes = map[string]error{
	"InvalidActivation":         ErrInvalidActivation,
	"InvalidActivationId":       ErrInvalidActivation,
	"ActivationExpired":         ErrActivationExpired,
	"RegistrationLimitExceeded": ErrRegistrationLimitExceeded,
	"InvalidPublicKey":          ErrInvalidPublicKey,
	"InstanceAlreadyRegistered": ErrInstanceAlreadyRegistered,
}

var advice = map[error]string{
	ErrInvalidActivation:         `check --activation-id and the activation code (they come from "aws eks register-cluster")`,
	ErrActivationExpired:         `EKS activations must be used within 3 days: deregister and register the cluster again ("ekslink connector deregister", "ekslink connector register")`,
	ErrRegistrationLimitExceeded: "every registration of this activation is used up (earlier attempts left orphaned managed instances): deregister them (\"ekslink connector cleanup\") or register the cluster again",
	ErrInvalidPublicKey:          "the key material is corrupt: this is a bug, please report it",
	ErrInstanceAlreadyRegistered: "this key material was registered before but its instance id was not recorded; deregister the managed instance with this fingerprint in SSM, delete the state Secret and run init again",
}

var retryableCodes = map[string]bool{
	"TooManyUpdates":                         true,
	"InternalServerError":                    true,
	"InternalFailure":                        true,
	"InternalError":                          true,
	"ServiceUnavailable":                     true,
	"ServiceUnavailableException":            true,
	"Throttling":                             true,
	"ThrottlingException":                    true,
	"ThrottledException":                     true,
	"TooManyRequestsException":               true,
	"RequestLimitExceeded":                   true,
	"RequestThrottled":                       true,
	"RequestThrottledException":              true,
	"ProvisionedThroughputExceededException": true,
	"SlowDown":                               true,
	"RequestTimeout":                         true,
	"RequestTimeoutException":                true,
}

// APIError is an error answer of the SSM endpoint. It implements smithy.APIError, and errors.Is
// matches the sentinel of its code (ErrActivationExpired, ...).
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the error code without namespace ("ActivationExpired").
	Code string
	// Message is the service's message.
	Message string
	// RequestID is the x-amzn-RequestId of the answer.
	RequestID string
}

// Error describes the failure with the code, message, request id and what to do.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "registration: RegisterManagedInstance failed: HTTP %d %s", e.StatusCode, e.Code)
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id " + e.RequestID + ")")
	}
	if s, ok := finalCodes[e.Code]; ok {
		b.WriteString(": " + advice[s])
	}
	return b.String()
}

// Is matches the sentinel error of the code.
func (e *APIError) Is(target error) bool {
	s, ok := finalCodes[e.Code]
	return ok && s == target
}

// ErrorCode implements smithy.APIError.
func (e *APIError) ErrorCode() string { return e.Code }

// ErrorMessage implements smithy.APIError.
func (e *APIError) ErrorMessage() string { return e.Message }

// ErrorFault implements smithy.APIError.
func (e *APIError) ErrorFault() smithy.ErrorFault {
	if e.StatusCode >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// Retryable says whether another attempt may succeed: throttling, TooManyUpdates, internal errors
// and any 5xx or 429. Final codes and other 4xx are not retryable.
func (e *APIError) Retryable() bool {
	if _, final := finalCodes[e.Code]; final {
		return false
	}
	if retryableCodes[e.Code] {
		return true
	}
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests
}

// RetryableError tells the SDK's standard retryer (which asks it first) what Retryable says, so
// that any retry.Standard a caller configures follows SSM's codes.
func (e *APIError) RetryableError() bool { return e.Retryable() }

// Final reports whether err is one of the final, typed SSM errors.
func Final(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		_, ok := finalCodes[ae.Code]
		return ok
	}
	return false
}
