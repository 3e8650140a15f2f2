package iamarn

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (errors.Is) by every error [Parse] returns.
var ErrInvalid = errors.New("invalid IAM principal ARN")

// ErrInvalidRegion is matched (errors.Is) by every error [PartitionForRegion] and [Hostname]
// return for a region that is empty, malformed or in no known partition.
var ErrInvalidRegion = errors.New("invalid AWS region")

// ParseError says why a string is not a valid IAM principal ARN.
type ParseError struct {
	// ARN is the input, cut to 128 bytes so a hostile value does not flood logs.
	ARN string
	// Reason is what is wrong and what was expected.
	Reason string
}

// Error returns "invalid IAM principal ARN "<arn>": <reason>".
func (e *ParseError) Error() string {
	if e.ARN == "" {
		return fmt.Sprintf("%v: %s", ErrInvalid, e.Reason)
	}
	return fmt.Sprintf("%v %q: %s", ErrInvalid, e.ARN, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *ParseError) Is(target error) bool { return target == ErrInvalid }

// RegionError says why a region names no known partition.
type RegionError struct {
	// Region is the region as given ("" when none was given).
	Region string
	// Reason is what is wrong and what to do.
	Reason string
}

// Error returns "iamarn: <reason>".
func (e *RegionError) Error() string { return "iamarn: " + e.Reason }

// Is reports whether target is ErrInvalidRegion.
func (e *RegionError) Is(target error) bool { return target == ErrInvalidRegion }

func invalid(arn, format string, args ...any) error {
	shown := arn
	if len(shown) > 128 {
		shown = shown[:128] + "..."
	}
	return &ParseError{ARN: shown, Reason: fmt.Sprintf(format, args...)}
}
