package oidc

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// ErrInvalidIssuer is wrapped by every ValidateIssuer error.
var ErrInvalidIssuer = errors.New("oidc: invalid issuer")

// IssuerError explains why an issuer URL cannot work with IAM and STS.
type IssuerError struct {
	// Issuer is the URL as given.
	Issuer string
	// Reason says what is wrong and what to do.
	Reason string
}

// Error implements error.
func (e *IssuerError) Error() string {
	return fmt.Sprintf("oidc: invalid issuer %q: %s", e.Issuer, e.Reason)
}

// Unwrap returns ErrInvalidIssuer.
func (e *IssuerError) Unwrap() error { return ErrInvalidIssuer }

var (
	// s3-<region>.amazonaws.com (legacy dash-region endpoints).
	legacyS3Host = regexp.MustCompile(`^s3-([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)
	// <bucket>.s3[.-]<region>.amazonaws.com or <bucket>.s3.amazonaws.com (virtual-hosted style).
	virtualHostedS3 = regexp.MustCompile(`^(.+)\.s3([.-][a-z0-9-]+)?\.amazonaws\.com(\.cn)?$`)
)

// ValidateIssuer checks an issuer URL the way IAM, STS and kube-apiserver need it: https, a host,
// no port, no user info, no query, no fragment, and (for S3-hosted issuers) a hostname whose TLS
// certificate STS can verify. It returns warnings for URLs that work but are easy to get wrong: a
// trailing slash (the issuer must match byte for byte in --service-account-issuer, the discovery
// document, every token's iss and the IAM provider) and legacy s3-<region> hostnames.
func ValidateIssuer(issuer string) (warnings []string, err error) {
	bad := func(format string, args ...any) ([]string, error) {
		return nil, &IssuerError{Issuer: issuer, Reason: fmt.Sprintf(format, args...)}
	}
	if issuer == "" {
		return bad("empty; use https://<host>[/<path>]")
	}
	if len(issuer) > 255 {
		return bad("%d characters; IAM allows at most 255", len(issuer))
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return bad("not a URL: %v", err)
	}
	switch {
	case u.Scheme != "https":
		return bad("scheme is %q, must be https", u.Scheme)
	case !strings.HasPrefix(issuer, "https://"):
		return bad("must start with https:// in lowercase: the IAM provider URL and trust-policy keys are the issuer without that prefix")
	case u.Host == "":
		return bad("no host")
	case u.User != nil:
		return bad("must not contain user info")
	case u.Port() != "" || strings.HasSuffix(u.Host, ":"):
		return bad("must not contain a port (IAM rejects provider URLs with ports)")
	case strings.ContainsAny(issuer, " \t\\\"<>^`{|}"):
		return bad("contains a space or a character that must be percent-encoded; tokens, discovery and IAM must carry the same bytes")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("must not contain a query")
	case u.Fragment != "" || strings.Contains(issuer, "#"):
		return bad("must not contain a fragment")
	}
	host := u.Hostname()
	if m := virtualHostedS3.FindStringSubmatch(host); m != nil && !legacyS3Host.MatchString(host) {
		if strings.Contains(m[1], ".") {
			return bad("bucket %q has dots and is addressed virtual-hosted style; the S3 wildcard certificate does not cover it, so STS cannot fetch the keys: use path style https://s3.<region>.amazonaws.com/%s", m[1], m[1])
		}
	}
	if strings.HasSuffix(u.Path, "/") {
		warnings = append(warnings, fmt.Sprintf("issuer %q ends with a slash: it must then end with a slash everywhere (--service-account-issuer, discovery, token iss, IAM provider URL); prefer %q", issuer, strings.TrimRight(issuer, "/")))
	}
	if m := legacyS3Host.FindStringSubmatch(host); m != nil {
		warnings = append(warnings, fmt.Sprintf("host %q is a legacy S3 endpoint; prefer https://s3.%s.amazonaws.com%s%s", host, m[1], m[2], u.Path))
	}
	return warnings, nil
}

// IssuerHostPath returns the issuer without its "https://" scheme: the IAM provider URL form and
// the prefix of trust-policy condition keys.
func IssuerHostPath(issuer string) string {
	return strings.TrimPrefix(issuer, "https://")
}
