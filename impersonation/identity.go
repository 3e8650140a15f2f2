package impersonation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/ekslink/ekslink/iamarn"
)

// DefaultIdentityHeader is the request header the EKS console and the SSM agent put the caller's
// IAM ARN in.
const DefaultIdentityHeader = "x-aws-eks-identity-arn"

// Extra keys ExtrasMapper sets, for audit logs and RBAC on userextras.
const (
	// ExtraARN carries the IAM ARN exactly as the caller presented it.
	ExtraARN = "arn"
	// ExtraSessionName carries the session name of an STS assumed-role ARN.
	ExtraSessionName = "sessionname"
)

// Errors returned for rejected identities; match them with errors.Is. They map to 401 (no or
// unparseable identity) and 403 (reserved identity) in Handler.
var (
	// ErrNoIdentity means the request carries no identity (missing or empty).
	ErrNoIdentity = errors.New("impersonation: no identity")
	// ErrAmbiguousIdentity means the identity was given more than once.
	ErrAmbiguousIdentity = errors.New("impersonation: identity given more than once")
	// ErrInvalidIdentity means the identity is malformed (not a valid IAM principal ARN, control
	// characters, too long).
	ErrInvalidIdentity = errors.New("impersonation: invalid identity")
	// ErrReservedIdentity means the identity names a Kubernetes-reserved user or group
	// ("system:" prefix), which a proxy must never impersonate on a caller's behalf.
	ErrReservedIdentity = errors.New("impersonation: reserved identity")
)

// Identity is who a request is forwarded as: the Impersonate-* headers.
type Identity struct {
	// User is Impersonate-User. Required: an empty user would mean "no impersonation" to the API
	// server, so it is refused.
	User string
	// UID is Impersonate-Uid (optional).
	UID string
	// Groups are Impersonate-Group values (optional).
	Groups []string
	// Extra are Impersonate-Extra-<key> values. Keys are lowercased and escaped on the wire.
	Extra map[string][]string
}

// Validate reports whether the identity may be impersonated: a non-empty user, no "system:"
// user or group, and no control characters anywhere.
func (id Identity) Validate() error {
	if id.User == "" {
		return ErrNoIdentity
	}
	if err := checkValue("user", "", id.User); err != nil {
		return err
	}
	if reservedName(id.User) {
		return fmt.Errorf("%w: user %q", ErrReservedIdentity, id.User)
	}
	if err := checkValue("uid", "", id.UID); err != nil {
		return err
	}
	for _, g := range id.Groups {
		if g == "" {
			return fmt.Errorf("%w: empty group", ErrInvalidIdentity)
		}
		if err := checkValue("group", "", g); err != nil {
			return err
		}
		if reservedName(g) {
			return fmt.Errorf("%w: group %q", ErrReservedIdentity, g)
		}
	}
	for k, vs := range id.Extra {
		if k == "" {
			return fmt.Errorf("%w: empty extra key", ErrInvalidIdentity)
		}
		if err := checkValue("extra key", "", k); err != nil {
			return err
		}
		for _, v := range vs {
			if err := checkValue("extra", k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// reservedName reports whether s starts with "system:" in any case. No Unicode character lowers
// to one of these ASCII letters, so this equals strings.HasPrefix(strings.ToLower(s), "system:")
// without the copy.
func reservedName(s string) bool {
	const prefix = "system:"
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// maxValueLength bounds every identity value; IAM ARNs are at most 2048 bytes.
const maxValueLength = 4096

// checkValue rejects over-long values and control or invalid characters. what (and key, for an
// extra value) name the value in the error.
func checkValue(what, key, v string) error {
	if len(v) > maxValueLength {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidIdentity, valueName(what, key), maxValueLength)
	}
	// Printable ASCII (nearly every value) needs no decoding; anything else is checked rune by rune.
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f {
			return checkRunes(valueName(what, key), v[i:])
		}
	}
	return nil
}

func valueName(what, key string) string {
	if key == "" {
		return what
	}
	return what + " " + key
}

func checkRunes(what, v string) error {
	for _, r := range v {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%w: %s contains control or invalid characters", ErrInvalidIdentity, what)
		}
	}
	return nil
}

type identityKey struct{}

// WithIdentity returns a context carrying the identity that RoundTripper forwards requests as.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFromContext returns the identity stored by WithIdentity. Handler shares one Identity
// value (its Groups slice and Extra map) between the requests of the same caller: treat it as
// read-only.
func IdentityFromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// IdentityFunc extracts the caller's raw identity (an IAM principal ARN) from a request. It must
// return an error wrapping ErrNoIdentity, ErrAmbiguousIdentity or ErrInvalidIdentity when the
// request carries no single usable identity.
type IdentityFunc func(r *http.Request) (string, error)

// HeaderIdentity reads the identity from exactly one non-empty value of the named header (in any
// spelling of its name).
func HeaderIdentity(name string) IdentityFunc {
	key := http.CanonicalHeaderKey(name)
	return func(r *http.Request) (string, error) {
		vs := r.Header[key]
		for k, more := range r.Header {
			if k != key && strings.EqualFold(k, key) {
				vs = append(vs[:len(vs):len(vs)], more...)
			}
		}
		switch {
		case len(vs) == 0:
			return "", fmt.Errorf("%w: header %s is missing", ErrNoIdentity, name)
		case len(vs) > 1:
			return "", fmt.Errorf("%w: header %s appears %d times", ErrAmbiguousIdentity, name, len(vs))
		case strings.TrimSpace(vs[0]) == "":
			return "", fmt.Errorf("%w: header %s is empty", ErrNoIdentity, name)
		}
		return vs[0], nil
	}
}

// Principal kinds, as parsed from an IAM ARN: the string values of the iamarn kinds.
const (
	// KindUser is an IAM user (iamarn.User).
	KindUser = string(iamarn.User)
	// KindRole is an IAM role (iamarn.Role).
	KindRole = string(iamarn.Role)
	// KindAssumedRole is an STS assumed-role session (iamarn.AssumedRole).
	KindAssumedRole = string(iamarn.AssumedRole)
	// KindRoot is an account root (iamarn.Root).
	KindRoot = string(iamarn.Root)
	// KindFederatedUser is an STS federated user (iamarn.FederatedUser).
	KindFederatedUser = string(iamarn.FederatedUser)
)

// Principal is a validated IAM principal ARN, as a Mapper sees it: the fields of iamarn.Principal
// a mapping needs, flattened to plain strings with the canonical ARN precomputed, so a Mapper is a
// function of data. ParseARN fills it through iamarn.Parse; use iamarn directly for the role path
// or RoleARN.
type Principal struct {
	// ARN is the ARN as given.
	ARN string
	// CanonicalARN is what EKS maps the principal to: the role ARN without path for an STS
	// assumed-role session, ARN otherwise.
	CanonicalARN string
	// Partition is "aws", "aws-cn", "aws-us-gov", ...
	Partition string
	// AccountID is the 12-digit account.
	AccountID string
	// Kind is one of the Kind* constants.
	Kind string
	// Name is the user, role or federated-user name ("" for root).
	Name string
	// SessionName is the session name of an assumed role.
	SessionName string
}

// ParseARN validates an IAM principal ARN of any partition (users, roles, assumed-role sessions,
// account roots, federated users) with iamarn.Parse. Errors wrap ErrInvalidIdentity (and the
// *iamarn.ParseError saying why), or ErrReservedIdentity for "system:" names.
func ParseARN(arn string) (Principal, error) {
	if reservedName(arn) {
		return Principal{}, fmt.Errorf("%w: %q is a Kubernetes system name, not an IAM ARN", ErrReservedIdentity, truncate(arn))
	}
	p, err := iamarn.Parse(arn)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidIdentity, err)
	}
	return Principal{
		ARN:          p.ARN,
		CanonicalARN: p.Canonical(),
		Partition:    p.Partition,
		AccountID:    p.AccountID,
		Kind:         string(p.Kind),
		Name:         p.Name,
		SessionName:  p.SessionName,
	}, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Mapper turns a validated principal into the identity requests are forwarded as.
type Mapper func(Principal) (Identity, error)

// DefaultMapper maps a principal as the EKS Connector does: Impersonate-User is the ARN as given,
// and nothing else is sent (no groups, uid or extras). This is the contract of the only RBAC AWS
// documents for the connector (impersonate on users, with the ARNs as resourceNames), so it works
// on every existing cluster.
func DefaultMapper(p Principal) (Identity, error) {
	return Identity{User: p.ARN}, nil
}

// CanonicalMapper is DefaultMapper with the canonical ARN as the username, so every session of a
// role is the same Kubernetes user (what aws-auth role mappings do).
func CanonicalMapper(p Principal) (Identity, error) {
	return Identity{User: p.CanonicalARN}, nil
}

// ExtrasMapper is DefaultMapper plus the user extras ExtraARN (the ARN as given) and, for
// assumed-role sessions, ExtraSessionName, for audit logs and RBAC on userextras. Opt-in: each
// extra is one more impersonation check in the API server, and it needs "impersonate" on
// userextras/arn and userextras/sessionname (group authentication.k8s.io), which the RBAC AWS
// documents for the connector does not grant: without it every request gets 403.
func ExtrasMapper(p Principal) (Identity, error) {
	return Identity{User: p.ARN, Extra: extras(p)}, nil
}

func extras(p Principal) map[string][]string {
	extra := map[string][]string{ExtraARN: {p.ARN}}
	if p.SessionName != "" {
		extra[ExtraSessionName] = []string{p.SessionName}
	}
	return extra
}
