package oidc

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DefaultAudience is the client id AWS STS expects in IRSA tokens.
const DefaultAudience = "sts.amazonaws.com"

// MaxTokenLength is the longest WebIdentityToken AssumeRoleWithWebIdentity accepts; Verify
// rejects longer tokens before decoding anything.
const MaxTokenLength = 20000

// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
const DefaultLeeway = time.Minute

// SupportedAlgorithms are the JWS algorithms Verify accepts; everything else (none, HS*, PS*,
// EdDSA) is rejected before any key is used.
var SupportedAlgorithms = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}

// Token rules; a *TokenError wraps exactly one of them, so errors.Is tells which rule failed.
var (
	// ErrMalformedToken: not a compact JWS with JSON header and claims.
	ErrMalformedToken = errors.New("malformed token")
	// ErrAlgorithm: alg not in SupportedAlgorithms (none, HS256, ...) or not the JWK's alg.
	ErrAlgorithm = errors.New("algorithm not allowed")
	// ErrMissingKeyID: the header has no kid.
	ErrMissingKeyID = errors.New("no kid in token header")
	// ErrUnknownKeyID: the kid is not in the JWKS.
	ErrUnknownKeyID = errors.New("kid not in key set")
	// ErrSignature: the signature does not verify with the key the kid names.
	ErrSignature = errors.New("signature invalid")
	// ErrIssuer: iss differs from Expect.Issuer.
	ErrIssuer = errors.New("issuer mismatch")
	// ErrAudience: aud lacks Expect.Audience.
	ErrAudience = errors.New("audience mismatch")
	// ErrExpired: exp is missing or past (beyond the leeway).
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf or iat is in the future (beyond the leeway).
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrSubject: sub is not a service account, or not Expect.Subject.
	ErrSubject = errors.New("subject invalid")
)

// TokenError is a rejected token: Rule is one of the Err* rule errors, Detail says what was
// expected and what was found.
type TokenError struct {
	Rule   error
	Detail string
}

// Error implements error.
func (e *TokenError) Error() string {
	return fmt.Sprintf("oidc: token rejected: %v: %s", e.Rule, e.Detail)
}

// Unwrap returns the rule.
func (e *TokenError) Unwrap() error { return e.Rule }

func reject(rule error, format string, args ...any) error {
	return &TokenError{Rule: rule, Detail: fmt.Sprintf(format, args...)}
}

// Expect is what a valid token must carry.
type Expect struct {
	// Issuer must equal the token's iss byte for byte (required).
	Issuer string
	// Audience must be one of the token's aud values (default DefaultAudience).
	Audience string
	// Subject, when set, must equal sub exactly; otherwise sub only has to name a service account.
	Subject string
	// Leeway is the allowed clock skew (default DefaultLeeway; negative means none).
	Leeway time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Claims are the verified claims of a service-account token.
type Claims struct {
	Issuer    string    `json:"iss"`
	Subject   string    `json:"sub"`
	Audience  []string  `json:"aud"`
	Expiry    time.Time `json:"exp"`
	NotBefore time.Time `json:"nbf,omitzero"`
	IssuedAt  time.Time `json:"iat,omitzero"`
	// Namespace and ServiceAccount are parsed from sub.
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
	// ServiceAccountUID, PodName, PodUID and NodeName come from the kubernetes.io claim when present.
	ServiceAccountUID string `json:"serviceAccountUID,omitempty"`
	PodName           string `json:"podName,omitempty"`
	PodUID            string `json:"podUID,omitempty"`
	NodeName          string `json:"nodeName,omitempty"`
	// KeyID and Algorithm are from the verified header.
	KeyID     string `json:"kid"`
	Algorithm string `json:"alg"`
}

type kubeClaims struct {
	jwt.Claims
	Kubernetes *struct {
		Namespace      string `json:"namespace"`
		ServiceAccount struct {
			Name string `json:"name"`
			UID  string `json:"uid"`
		} `json:"serviceaccount"`
		Pod *struct {
			Name string `json:"name"`
			UID  string `json:"uid"`
		} `json:"pod"`
		Node *struct {
			Name string `json:"name"`
		} `json:"node"`
	} `json:"kubernetes.io"`
}

// Verifier verifies tokens against one parsed JWKS; it is safe for concurrent use.
type Verifier struct {
	keys   map[string][]jose.JSONWebKey
	expect Expect
}

// NewVerifier parses a JWKS document (as Documents or kube-apiserver produce it) for verifying
// tokens with the given expectations.
func NewVerifier(jwksJSON []byte, expect Expect) (*Verifier, error) {
	if expect.Issuer == "" {
		return nil, errors.New("oidc: Expect.Issuer is required")
	}
	if expect.Audience == "" {
		expect.Audience = DefaultAudience
	}
	if expect.Leeway == 0 {
		expect.Leeway = DefaultLeeway
	} else if expect.Leeway < 0 {
		expect.Leeway = 0
	}
	if expect.Now == nil {
		expect.Now = time.Now
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwksJSON, &set); err != nil {
		return nil, fmt.Errorf("%w: JWKS: %v", ErrMalformedKey, err)
	}
	v := &Verifier{keys: map[string][]jose.JSONWebKey{}, expect: expect}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if !k.IsPublic() {
			k = k.Public()
		}
		v.keys[k.KeyID] = append(v.keys[k.KeyID], k)
	}
	if len(v.keys) == 0 {
		return nil, fmt.Errorf("%w: JWKS has no signing keys", ErrNoKeys)
	}
	return v, nil
}

// Verify checks a token against a JWKS document; see Verifier.Verify.
func Verify(token string, jwksJSON []byte, expect Expect) (*Claims, error) {
	v, err := NewVerifier(jwksJSON, expect)
	if err != nil {
		return nil, err
	}
	return v.Verify(token)
}

// Verify checks, in this order: length (MaxTokenLength) and compact JWS shape; alg in
// SupportedAlgorithms (and equal to the key's alg when the JWK names one); kid present and in the
// key set; signature; iss equal to Expect.Issuer; aud containing Expect.Audience; exp and nbf (and
// iat) within leeway; sub of the form system:serviceaccount:<namespace>:<name> (and equal to
// Expect.Subject when set). Failures are *TokenError values wrapping the rule that failed.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if len(token) > MaxTokenLength {
		return nil, reject(ErrMalformedToken, "%d bytes; STS accepts web identity tokens of at most %d", len(token), MaxTokenLength)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, reject(ErrMalformedToken, "want three dot-separated parts (compact JWS), got %d", len(parts))
	}
	rawHeader, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, reject(ErrMalformedToken, "header is not base64url: %v", err)
	}
	var header struct {
		Alg string  `json:"alg"`
		Kid *string `json:"kid"`
	}
	if err := json.Unmarshal(rawHeader, &header); err != nil {
		return nil, reject(ErrMalformedToken, "header is not JSON: %v", err)
	}
	if !slices.Contains(SupportedAlgorithms, header.Alg) {
		return nil, reject(ErrAlgorithm, "alg %q, want one of %s", header.Alg, strings.Join(SupportedAlgorithms, ", "))
	}
	if header.Kid == nil || *header.Kid == "" {
		return nil, reject(ErrMissingKeyID, "kube-apiserver tokens since 1.16 carry a kid; tokens without one cannot be matched to a key")
	}
	candidates := v.keys[*header.Kid]
	if len(candidates) == 0 {
		return nil, reject(ErrUnknownKeyID, "kid %q is not in the JWKS (%d keys); was the key rotated out or the JWKS not republished?", *header.Kid, v.keyCount())
	}
	jws, err := jose.ParseSignedCompact(token, algorithms())
	if err != nil {
		return nil, reject(ErrMalformedToken, "%v", err)
	}
	var payload []byte
	var lastErr error
	for _, k := range candidates {
		if k.Algorithm != "" && k.Algorithm != header.Alg {
			lastErr = reject(ErrAlgorithm, "token alg %q but JWK %q is for %q", header.Alg, *header.Kid, k.Algorithm)
			continue
		}
		if payload, err = jws.Verify(k.Key); err == nil {
			lastErr = nil
			break
		}
		lastErr = reject(ErrSignature, "kid %q: %v", *header.Kid, err)
	}
	if lastErr != nil {
		return nil, lastErr
	}
	var c kubeClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, reject(ErrMalformedToken, "claims: %v", err)
	}
	if c.Issuer != v.expect.Issuer {
		hint := "must match byte for byte"
		if strings.TrimSuffix(c.Issuer, "/") == strings.TrimSuffix(v.expect.Issuer, "/") {
			hint = "they differ only by a trailing slash; --service-account-issuer, discovery, token iss and the IAM provider URL must all agree"
		}
		return nil, reject(ErrIssuer, "iss %q, want %q (%s)", c.Issuer, v.expect.Issuer, hint)
	}
	if !c.Audience.Contains(v.expect.Audience) {
		return nil, reject(ErrAudience, "aud %q does not contain %q (mint the token with that audience, e.g. a projected token with audience %s)", []string(c.Audience), v.expect.Audience, v.expect.Audience)
	}
	now := v.expect.Now()
	leeway := v.expect.Leeway
	if c.Expiry == nil {
		return nil, reject(ErrExpired, "no exp claim")
	}
	if exp := c.Expiry.Time(); !now.Before(exp.Add(leeway)) {
		return nil, reject(ErrExpired, "expired at %s, now %s (leeway %s)", exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), leeway)
	}
	if c.NotBefore != nil {
		if nbf := c.NotBefore.Time(); now.Add(leeway).Before(nbf) {
			return nil, reject(ErrNotYetValid, "not before %s, now %s (leeway %s)", nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), leeway)
		}
	}
	if c.IssuedAt != nil {
		if iat := c.IssuedAt.Time(); now.Add(leeway).Before(iat) {
			return nil, reject(ErrNotYetValid, "issued at %s, in the future (now %s, leeway %s)", iat.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), leeway)
		}
	}
	ns, name, ok := ParseServiceAccountSubject(c.Subject)
	if !ok {
		return nil, reject(ErrSubject, "sub %q, want system:serviceaccount:<namespace>:<name>", c.Subject)
	}
	if v.expect.Subject != "" && c.Subject != v.expect.Subject {
		return nil, reject(ErrSubject, "sub %q, want %q", c.Subject, v.expect.Subject)
	}
	out := &Claims{
		Issuer: c.Issuer, Subject: c.Subject, Audience: []string(c.Audience),
		Expiry: c.Expiry.Time(), Namespace: ns, ServiceAccount: name,
		KeyID: *header.Kid, Algorithm: header.Alg,
	}
	if c.NotBefore != nil {
		out.NotBefore = c.NotBefore.Time()
	}
	if c.IssuedAt != nil {
		out.IssuedAt = c.IssuedAt.Time()
	}
	if k := c.Kubernetes; k != nil {
		out.ServiceAccountUID = k.ServiceAccount.UID
		if k.Pod != nil {
			out.PodName, out.PodUID = k.Pod.Name, k.Pod.UID
		}
		if k.Node != nil {
			out.NodeName = k.Node.Name
		}
	}
	return out, nil
}

func (v *Verifier) keyCount() int {
	n := 0
	for _, ks := range v.keys {
		n += len(ks)
	}
	return n
}

func algorithms() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(SupportedAlgorithms))
	for i, a := range SupportedAlgorithms {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}

// ServiceAccountSubject returns the sub claim of a service account's tokens.
func ServiceAccountSubject(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// ParseServiceAccountSubject splits system:serviceaccount:<namespace>:<name>, where namespace is a
// DNS-1123 label and name a DNS-1123 subdomain.
func ParseServiceAccountSubject(sub string) (namespace, name string, ok bool) {
	rest, found := strings.CutPrefix(sub, "system:serviceaccount:")
	if !found {
		return "", "", false
	}
	namespace, name, found = strings.Cut(rest, ":")
	// Kubernetes only issues names of this shape; anything else (a wildcard that a StringLike
	// trust policy would match, upper case, spaces) is not a service account.
	if !found || len(namespace) > 63 || !namespacePattern.MatchString(namespace) ||
		len(name) > 253 || !subdomainPattern.MatchString(name) {
		return "", "", false
	}
	return namespace, name, true
}

// subdomainPattern is a DNS-1123 subdomain, the shape of a service account name.
var subdomainPattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
