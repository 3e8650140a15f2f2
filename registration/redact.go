package registration

import (
	"fmt"
	"log/slog"
)

// The activation code is a secret: the types that carry it print and log without it, whether
// through fmt (%v, %+v, %#v), logr (MarshalLog) or slog (LogValue). Read the Code fields directly
// where the code is really needed.

// String describes the activation without its code.
func (a Activation) String() string { return fmt.Sprintf("{ID:%s Code:<redacted>}", a.ID) }

// GoString describes the activation for %#v without its code.
func (a Activation) GoString() string {
	return fmt.Sprintf("registration.Activation{ID:%q, Code:<redacted>}", a.ID)
}

// MarshalLog implements logr.Marshaler: the id only.
func (a Activation) MarshalLog() any { return struct{ ID string }{a.ID} }

// LogValue implements slog.LogValuer: the id only.
func (a Activation) LogValue() slog.Value { return slog.GroupValue(slog.String("id", a.ID)) }

// String describes the request without the activation code.
func (in RegisterInput) String() string {
	return fmt.Sprintf("{ActivationID:%s ActivationCode:<redacted> Fingerprint:%s PublicKey:%d base64 characters}", in.ActivationID, in.Fingerprint, len(in.PublicKey))
}

// GoString describes the request for %#v without the activation code.
func (in RegisterInput) GoString() string { return "registration.RegisterInput" + in.String() }

// MarshalLog implements logr.Marshaler: everything but the activation code.
func (in RegisterInput) MarshalLog() any {
	return struct{ ActivationID, Fingerprint string }{in.ActivationID, in.Fingerprint}
}

// LogValue implements slog.LogValuer: everything but the activation code.
func (in RegisterInput) LogValue() slog.Value {
	return slog.GroupValue(slog.String("activationID", in.ActivationID), slog.String("fingerprint", in.Fingerprint))
}

// LogValue implements slog.LogValuer: the registration without the activation code.
func (r ClusterRegistration) LogValue() slog.Value {
	return slog.GroupValue(slog.String("clusterARN", r.ClusterARN), slog.String("activationID", r.Activation.ID),
		slog.Time("expiry", r.Expiry), slog.String("region", r.Region))
}

// MarshalLog implements logr.Marshaler: the registration without the activation code.
func (r ClusterRegistration) MarshalLog() any {
	return struct {
		ClusterARN, ActivationID, Region string
		Expiry                           string
	}{r.ClusterARN, r.Activation.ID, r.Region, r.Expiry.String()}
}
