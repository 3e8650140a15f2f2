package manifest

import (
	"errors"
	"fmt"
)

// ErrInvalidOptions is wrapped by every error about the options given to a render function.
var ErrInvalidOptions = errors.New("manifest: invalid options")

// OptionError is one problem with one option. Render functions return all of them joined, so a
// caller sees every problem at once; use errors.As to inspect the first.
type OptionError struct {
	// Field is the option's Go field name, e.g. "Region".
	Field string
	// Value is the offending value (secrets are redacted).
	Value string
	// Reason says what was expected.
	Reason string
}

// Error says which option is wrong and what was expected.
func (e *OptionError) Error() string {
	return fmt.Sprintf("manifest: %s %q: %s", e.Field, e.Value, e.Reason)
}

// Is makes every OptionError match ErrInvalidOptions.
func (e *OptionError) Is(target error) bool { return target == ErrInvalidOptions }

func optionError(field, value, reason string) error {
	return &OptionError{Field: field, Value: value, Reason: reason}
}

func joinOptionErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}
