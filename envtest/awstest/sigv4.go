package awstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	amzDateLayout    = "20060102T150405Z"
	// presignDefaultValidity is how long a presigned request without X-Amz-Expires is accepted
	// (STS's 15 minutes for GetCallerIdentity).
	presignDefaultValidity = 15 * time.Minute
	// presignMaxExpires is SigV4's ceiling for X-Amz-Expires (seven days), in seconds.
	presignMaxExpires = 604800
)

// SignatureError says why a request's signature was refused.
type SignatureError struct {
	// Code is the AWS error code the service answers with (IncompleteSignature,
	// MissingAuthenticationToken, InvalidClientTokenId, SignatureDoesNotMatch, ...).
	Code string
	// Reason is a human-readable explanation.
	Reason string
}

// Error returns the code and the reason.
func (e *SignatureError) Error() string { return e.Code + ": " + e.Reason }

// Verifier checks SigV4 signatures with the SDK's signer.
type Verifier struct {
	// Service is the SigV4 signing name ("sts", "eks-auth", "ssm", "s3", "iam", "eks").
	Service string
	// Region is the signing region.
	Region string
	// Credentials are the known credentials, by access key id.
	Credentials map[string]aws.Credentials
	// Lookup, when set, is consulted for access key ids not in Credentials (credentials issued
	// while the server runs, such as those an emulated STS or EKS Auth hands out).
	Lookup func(accessKeyID string) (aws.Credentials, bool)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxSkew is the tolerated clock skew for header-signed requests (default 5 minutes).
	MaxSkew time.Duration
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Signed reports whether the request carries any SigV4 signature.
func Signed(r *http.Request) bool {
	return r.Header.Get("Authorization") != "" || r.URL.Query().Get("X-Amz-Signature") != ""
}

// Verify checks the request's signature (header or presigned query). body is the request body,
// already read.
func (v *Verifier) Verify(r *http.Request, body []byte) (aws.Credentials, error) {
	if r.URL.Query().Get("X-Amz-Signature") != "" {
		return v.verifyPresigned(r)
	}
	return v.verifyHeader(r, body)
}

type scope struct {
	akid, date, region, service string
}

func parseCredential(s string) (scope, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return scope{}, &SignatureError{"IncompleteSignature", "malformed credential scope " + s}
	}
	return scope{parts[0], parts[1], parts[2], parts[3]}, nil
}

func (v *Verifier) checkScope(sc scope, signingTime time.Time) (aws.Credentials, error) {
	creds, ok := v.Credentials[sc.akid]
	if !ok && v.Lookup != nil {
		creds, ok = v.Lookup(sc.akid)
	}
	if !ok {
		return aws.Credentials{}, &SignatureError{"InvalidClientTokenId", "unknown access key id " + sc.akid}
	}
	if sc.service != v.Service {
		return creds, &SignatureError{"SignatureDoesNotMatch", fmt.Sprintf("credential scope service %q, want %q", sc.service, v.Service)}
	}
	if sc.region != v.Region {
		return creds, &SignatureError{"SignatureDoesNotMatch", fmt.Sprintf("credential scope region %q, want %q", sc.region, v.Region)}
	}
	if sc.date != signingTime.Format("20060102") {
		return creds, &SignatureError{"SignatureDoesNotMatch", "credential scope date does not match X-Amz-Date"}
	}
	return creds, nil
}

func (v *Verifier) verifyHeader(r *http.Request, body []byte) (aws.Credentials, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return aws.Credentials{}, &SignatureError{"MissingAuthenticationToken", "request is not signed"}
	}
	algo, rest, _ := strings.Cut(auth, " ")
	if algo != "AWS4-HMAC-SHA256" {
		return aws.Credentials{}, &SignatureError{"IncompleteSignature", "unsupported algorithm " + algo}
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = val
	}
	if fields["Credential"] == "" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return aws.Credentials{}, &SignatureError{"IncompleteSignature", "Authorization lacks Credential, SignedHeaders or Signature"}
	}
	sc, err := parseCredential(fields["Credential"])
	if err != nil {
		return aws.Credentials{}, err
	}
	signingTime, err := time.Parse(amzDateLayout, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return aws.Credentials{}, &SignatureError{"IncompleteSignature", "missing or malformed X-Amz-Date"}
	}
	maxSkew := v.MaxSkew
	if maxSkew == 0 {
		maxSkew = 5 * time.Minute
	}
	if d := v.now().Sub(signingTime); d > maxSkew || d < -maxSkew {
		return aws.Credentials{}, &SignatureError{"SignatureDoesNotMatch", "signature expired: X-Amz-Date is outside the allowed skew"}
	}
	creds, err := v.checkScope(sc, signingTime)
	if err != nil {
		return creds, err
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !sort.StringsAreSorted(signed) || !contains(signed, "host") || !contains(signed, "x-amz-date") {
		return creds, &SignatureError{"SignatureDoesNotMatch", "SignedHeaders must be sorted and include host and x-amz-date"}
	}
	if creds.SessionToken != "" {
		if r.Header.Get("X-Amz-Security-Token") != creds.SessionToken {
			return creds, &SignatureError{"InvalidClientTokenId", "security token missing or wrong"}
		}
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	// Only S3 signs "UNSIGNED-PAYLOAD"; every other service hashes the body it received, so a
	// client claiming an unsigned payload there cannot make a tampered body verify.
	if h := r.Header.Get("X-Amz-Content-Sha256"); h == "UNSIGNED-PAYLOAD" && v.Service == "s3" {
		payloadHash = h
	} else if h != "" && h != payloadHash {
		return creds, &SignatureError{"XAmzContentSHA256Mismatch", "X-Amz-Content-Sha256 does not match the body"}
	}

	clone, err := rebuild(r, signed, body)
	if err != nil {
		return creds, err
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = v.Service == "s3" })
	if err := signer.SignHTTP(context.Background(), creds, clone, payloadHash, v.Service, v.Region, signingTime); err != nil {
		return creds, err
	}
	want := signatureField(clone.Header.Get("Authorization"))
	if subtle.ConstantTimeCompare([]byte(want), []byte(fields["Signature"])) != 1 {
		return creds, &SignatureError{"SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided"}
	}
	return creds, nil
}

func (v *Verifier) verifyPresigned(r *http.Request) (aws.Credentials, error) {
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" {
		return aws.Credentials{}, &SignatureError{"IncompleteSignature", "X-Amz-Algorithm must be AWS4-HMAC-SHA256"}
	}
	sc, err := parseCredential(q.Get("X-Amz-Credential"))
	if err != nil {
		return aws.Credentials{}, err
	}
	signingTime, err := time.Parse(amzDateLayout, q.Get("X-Amz-Date"))
	if err != nil {
		return aws.Credentials{}, &SignatureError{"IncompleteSignature", "missing or malformed X-Amz-Date"}
	}
	// Without X-Amz-Expires (the SDK's STS presigner sends none) STS still holds a presigned request
	// valid for 15 minutes only; a missing parameter never means "forever".
	validity := presignDefaultValidity
	if exp := q.Get("X-Amz-Expires"); exp != "" {
		secs, err := strconv.Atoi(exp)
		if err != nil || secs < 0 || secs > presignMaxExpires || strings.TrimLeft(exp, "0123456789") != "" {
			return aws.Credentials{}, &SignatureError{"IncompleteSignature", "malformed X-Amz-Expires"}
		}
		validity = time.Duration(secs) * time.Second
	}
	if v.now().After(signingTime.Add(validity)) {
		return aws.Credentials{}, &SignatureError{"ExpiredToken", "the presigned request has expired"}
	}
	creds, err := v.checkScope(sc, signingTime)
	if err != nil {
		return creds, err
	}
	if creds.SessionToken != "" && q.Get("X-Amz-Security-Token") != creds.SessionToken {
		return creds, &SignatureError{"InvalidClientTokenId", "security token missing or wrong"}
	}
	signed := strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	if !contains(signed, "host") {
		return creds, &SignatureError{"SignatureDoesNotMatch", "X-Amz-SignedHeaders must include host"}
	}
	got := q.Get("X-Amz-Signature")
	base := url.Values{}
	for k, vals := range q {
		switch k {
		case "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token":
			continue
		}
		base[k] = vals
	}
	for _, payloadHash := range []string{emptyPayloadHash, "UNSIGNED-PAYLOAD"} {
		clone, err := rebuild(r, signed, nil)
		if err != nil {
			return creds, err
		}
		clone.URL.RawQuery = base.Encode()
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = v.Service == "s3" })
		signedURL, _, err := signer.PresignHTTP(context.Background(), creds, clone, payloadHash, v.Service, v.Region, signingTime)
		if err != nil {
			return creds, err
		}
		u, err := url.Parse(signedURL)
		if err != nil {
			return creds, err
		}
		if subtle.ConstantTimeCompare([]byte(u.Query().Get("X-Amz-Signature")), []byte(got)) == 1 {
			return creds, nil
		}
	}
	return creds, &SignatureError{"SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided"}
}

// rebuild copies the request with only the signed headers, so the SDK signer signs the same set.
func rebuild(r *http.Request, signed []string, body []byte) (*http.Request, error) {
	u := *r.URL
	u.Scheme = "https"
	u.Host = r.Host
	clone, err := http.NewRequest(r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	clone.URL.RawPath = r.URL.RawPath
	clone.URL.Path = r.URL.Path
	clone.Host = r.Host
	clone.ContentLength = 0
	for _, h := range signed {
		switch h {
		case "host":
			continue
		case "content-length":
			clone.ContentLength = int64(len(body))
			continue
		}
		vals, ok := r.Header[http.CanonicalHeaderKey(h)]
		if !ok {
			return nil, &SignatureError{"SignatureDoesNotMatch", "signed header " + h + " is not in the request"}
		}
		clone.Header[http.CanonicalHeaderKey(h)] = vals
	}
	clone.Body = io.NopCloser(bytes.NewReader(body))
	return clone, nil
}

func signatureField(auth string) string {
	_, sig, _ := strings.Cut(auth, "Signature=")
	return sig
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
