package eksauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ekslink/ekslink/iamarn"
)

// Token wire constants (aws-iam-authenticator's contract).
const (
	// TokenPrefix starts every EKS bearer token.
	TokenPrefix = "k8s-aws-v1."
	// ClusterIDHeader is the signed header that binds a token to one cluster.
	ClusterIDHeader = "x-k8s-aws-id"
	// MaxTokenLength is the longest token the verifier accepts.
	MaxTokenLength = 4096
	// PresignExpiresSeconds is the X-Amz-Expires value; the verifier requires the parameter.
	PresignExpiresSeconds = 60
	// TokenValidity is how long STS accepts the presigned URL after signing.
	TokenValidity = 15 * time.Minute
	// TokenLifetime is the expiration clients use: one minute of margin below TokenValidity.
	TokenLifetime = 14 * time.Minute

	emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	amzDateLayout    = "20060102T150405Z"
)

// Errors returned by the token functions; match with errors.Is.
var (
	// ErrInvalidToken is wrapped by every *TokenError.
	ErrInvalidToken = errors.New("eksauth: invalid token")
	// ErrTokenExpired is wrapped when X-Amz-Date is older than TokenValidity.
	ErrTokenExpired = errors.New("eksauth: token expired")
	// ErrCredentialsExpired is returned when the credentials expire before a usable token could be made.
	ErrCredentialsExpired = errors.New("eksauth: AWS credentials expired")
	// ErrInvalidCluster is returned for an empty or malformed cluster name or ID.
	ErrInvalidCluster = errors.New("eksauth: invalid cluster name or ID")
	// ErrNoRegion is returned when no region is configured (there is no default).
	ErrNoRegion = errors.New("eksauth: no region: set aws.Config.Region or TokenOptions.Region (there is no default)")
)

// TokenError says which verifier rule a token breaks.
type TokenError struct {
	// Rule is a short name of the broken rule ("length", "prefix", "host", ...).
	Rule string
	// Reason explains it.
	Reason string
	// Expired is set for the "date" rule when the token is too old.
	Expired bool
}

// Error describes the broken rule.
func (e *TokenError) Error() string {
	return fmt.Sprintf("eksauth: invalid token (%s): %s", e.Rule, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidToken) and, for expired tokens, ErrTokenExpired true.
func (e *TokenError) Is(target error) bool {
	return target == ErrInvalidToken || (e.Expired && target == ErrTokenExpired)
}

// TokenOptions configure a TokenGenerator; NewTokenGenerator's functions set them. Zero values take
// what the aws.Config holds: its region and credentials, the regional STS endpoint and time.Now.
type TokenOptions struct {
	// Region is the STS region to sign for (default aws.Config.Region). Required one way or the other.
	Region string
	// FIPS selects the FIPS STS endpoint.
	FIPS bool
	// DualStack selects the dual-stack (IPv6) STS endpoint; only partitions with dual-stack STS
	// endpoints the verifier accepts (aws, aws-cn, aws-us-gov, aws-eusc).
	DualStack bool
	// GlobalEndpoint selects the legacy sts.amazonaws.com endpoint (signed for us-east-1). Only in the
	// aws partition, and only when asked for: regional endpoints are the default.
	GlobalEndpoint bool
	// Credentials overrides aws.Config.Credentials.
	Credentials aws.CredentialsProvider
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Token is an EKS bearer token. Its String method hides the secret value; use Value.
type Token struct {
	// Value is the bearer token, "k8s-aws-v1.…". It is a credential: never log it.
	Value string
	// Expiration is when clients should stop using it: signing time + 14 minutes, or earlier
	// when the AWS credentials expire first.
	Expiration time.Time
	// SignedAt is X-Amz-Date.
	SignedAt time.Time
	// Host is the STS host the token names.
	Host string
}

// String returns a redacted description, so tokens do not end up in logs by accident.
func (t Token) String() string {
	return fmt.Sprintf("EKS token for %s signed %s, expires %s", t.Host, t.SignedAt.UTC().Format(time.RFC3339), t.Expiration.UTC().Format(time.RFC3339))
}

// GoString is String, for %#v.
func (t Token) GoString() string { return t.String() }

// TokenGenerator makes EKS bearer tokens. It is safe for concurrent use.
type TokenGenerator struct {
	creds     aws.CredentialsProvider
	region    string
	partition iamarn.Partition
	host      string
	sigRegion string
	now       func() time.Time
	signer    *v4.Signer
}

// clusterPattern accepts EKS cluster names and the UUID cluster IDs of local clusters on Outposts.
var clusterPattern = regexp.MustCompile(`^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$`)

// NewTokenGenerator builds a TokenGenerator from an aws.Config (its region and credentials), then
// applies optFns in order, as an aws-sdk-go-v2 NewFromConfig does. It checks the region and endpoint
// choice up front, so Token only fails for credential or cluster problems.
func NewTokenGenerator(cfg aws.Config, optFns ...func(*TokenOptions)) (*TokenGenerator, error) {
	var opts TokenOptions
	for _, fn := range optFns {
		fn(&opts)
	}
	region := opts.Region
	if region == "" {
		region = cfg.Region
	}
	if region == "" {
		return nil, ErrNoRegion
	}
	creds := opts.Credentials
	if creds == nil {
		creds = cfg.Credentials
	}
	if creds == nil {
		return nil, errors.New("eksauth: no AWS credentials configured")
	}
	host, sigRegion, p, err := STSHost(region, opts.FIPS, opts.DualStack, opts.GlobalEndpoint)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &TokenGenerator{creds: creds, region: region, partition: p, host: host, sigRegion: sigRegion, now: now, signer: v4.NewSigner()}, nil
}

// Host is the STS host the generator's tokens name.
func (g *TokenGenerator) Host() string { return g.host }

// Partition is the partition the generator's tokens belong to.
func (g *TokenGenerator) Partition() string { return g.partition.ID }

// Region is the region the generator signs for.
func (g *TokenGenerator) Region() string { return g.region }

// STSHost returns the STS host a token must name for the region and endpoint choice, the region
// to sign for, and the partition. It resolves with the STS SDK's endpoint rules (what the verifier
// resolves with) and then refuses anything outside the partition's domains, so a region the SDK
// does not know never silently becomes a commercial-partition host.
func STSHost(region string, fips, dualStack, global bool) (host, signingRegion string, p iamarn.Partition, err error) {
	p, err = iamarn.PartitionForRegion(region)
	if err != nil {
		return "", "", p, fmt.Errorf("eksauth: %w", err)
	}
	if global {
		if p.ID != iamarn.PartitionAWS || fips || dualStack {
			return "", "", p, fmt.Errorf("eksauth: the legacy global STS endpoint exists only in the aws partition, without FIPS or dual-stack (region %s is in %s)", region, p.ID)
		}
		return "sts.amazonaws.com", "us-east-1", p, nil
	}
	if dualStack && p.DualStackDNSSuffix == "" {
		return "", "", p, fmt.Errorf("eksauth: partition %s has no dual-stack STS endpoint EKS accepts; do not set DualStack for region %s", p.ID, region)
	}
	ep, err := sts.NewDefaultEndpointResolverV2().ResolveEndpoint(context.Background(), sts.EndpointParameters{
		Region: aws.String(region), UseFIPS: aws.Bool(fips), UseDualStack: aws.Bool(dualStack), UseGlobalEndpoint: aws.Bool(false),
	})
	if err != nil {
		return "", "", p, fmt.Errorf("eksauth: resolving the STS endpoint of %s (fips=%t, dual-stack=%t): %w", region, fips, dualStack, err)
	}
	host = ep.URI.Host
	if _, err := checkSTSHost(host, p); err != nil {
		return "", "", p, fmt.Errorf("eksauth: the STS endpoint rules give %q for %s (fips=%t, dual-stack=%t), which EKS would reject: %v", host, region, fips, dualStack, err)
	}
	return host, region, p, nil
}

// checkSTSHost returns the region named by an STS host of partition p.
func checkSTSHost(host string, p iamarn.Partition) (string, error) {
	if host == "" || strings.ContainsAny(host, ":/@[]") {
		return "", fmt.Errorf("host %q must be a bare DNS name without port", host)
	}
	if host == "sts.amazonaws.com" {
		if p.ID != iamarn.PartitionAWS {
			return "", fmt.Errorf("the global endpoint is not accepted in partition %s", p.ID)
		}
		return "us-east-1", nil
	}
	label, rest, ok := strings.Cut(host, ".")
	if !ok || (label != "sts" && label != "sts-fips") {
		return "", fmt.Errorf("host %q is not an STS endpoint (sts.<region>.<domain>)", host)
	}
	region, domain, ok := strings.Cut(rest, ".")
	if !ok {
		return "", fmt.Errorf("host %q has no domain", host)
	}
	rp, err := iamarn.PartitionForRegion(region)
	if err != nil {
		return "", fmt.Errorf("host %q: %v", host, err)
	}
	if rp.ID != p.ID {
		return "", fmt.Errorf("host %q is in partition %s, want %s", host, rp.ID, p.ID)
	}
	if domain != p.DNSSuffix && (p.DualStackDNSSuffix == "" || domain != p.DualStackDNSSuffix) {
		return "", fmt.Errorf("host %q: domain %q is not an STS domain of partition %s", host, domain, p.ID)
	}
	return region, nil
}

// Token returns a fresh token for the cluster (its name, or its ID for EKS local clusters on
// Outposts). The token is checked with ParseToken before it is returned.
func (g *TokenGenerator) Token(ctx context.Context, cluster string) (Token, error) {
	if !clusterPattern.MatchString(cluster) {
		return Token{}, fmt.Errorf("%w: %q (expected the cluster name or, for local clusters on Outposts, its ID)", ErrInvalidCluster, cluster)
	}
	creds, err := g.creds.Retrieve(ctx)
	if err != nil {
		return Token{}, fmt.Errorf("eksauth: retrieving AWS credentials: %w", err)
	}
	if !creds.HasKeys() {
		return Token{}, errors.New("eksauth: the AWS credentials have no access key (anonymous credentials cannot sign a token)")
	}
	now := g.now().UTC().Truncate(time.Second)
	exp := now.Add(TokenLifetime)
	if creds.CanExpire {
		if !creds.Expires.After(now) {
			return Token{}, fmt.Errorf("%w at %s (now %s): refresh them before asking for a token", ErrCredentialsExpired, creds.Expires.UTC().Format(time.RFC3339), now.Format(time.RFC3339))
		}
		if creds.Expires.Before(exp) {
			exp = creds.Expires
		}
	}
	q := url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2011-06-15"}, "X-Amz-Expires": {strconv.Itoa(PresignExpiresSeconds)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+g.host+"/?"+q.Encode(), nil)
	if err != nil {
		return Token{}, err
	}
	req.Header.Set(ClusterIDHeader, cluster)
	signed, _, err := g.signer.PresignHTTP(ctx, creds, req, emptyPayloadHash, "sts", g.sigRegion, now)
	if err != nil {
		return Token{}, fmt.Errorf("eksauth: presigning GetCallerIdentity: %w", err)
	}
	tok := Token{Value: TokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(signed)), Expiration: exp, SignedAt: now, Host: g.host}
	if _, err := ParseToken(tok.Value, ValidateOptions{Partition: g.partition.ID, Now: func() time.Time { return now }}); err != nil {
		return Token{}, fmt.Errorf("eksauth: refusing to return a token EKS would reject: %w", err)
	}
	return tok, nil
}

// ValidateOptions configure ParseToken.
type ValidateOptions struct {
	// Partition is the partition the authenticator runs in (required: hosts of other partitions are
	// refused).
	Partition string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxFutureSkew tolerates X-Amz-Date slightly in the future (default 5 minutes).
	MaxFutureSkew time.Duration
}

// ParsedToken is what ParseToken learned from a well-formed token.
type ParsedToken struct {
	// URL is the presigned GetCallerIdentity URL an authenticator GETs with the x-k8s-aws-id header.
	URL *url.URL
	// Host, Region and Partition locate the STS endpoint.
	Host, Region, Partition string
	// SigningRegion is the region of the credential scope.
	SigningRegion string
	// AccessKeyID is the signer's access key id.
	AccessKeyID string
	// SessionToken reports whether X-Amz-Security-Token is present.
	SessionToken bool
	// SignedAt is X-Amz-Date; ExpiresAt is SignedAt + TokenValidity.
	SignedAt, ExpiresAt time.Time
}

// allowedParams are the only query parameters the verifier accepts (lower case).
var allowedParams = map[string]bool{
	"action": true, "version": true, "x-amz-algorithm": true, "x-amz-credential": true, "x-amz-date": true,
	"x-amz-expires": true, "x-amz-security-token": true, "x-amz-signature": true, "x-amz-signedheaders": true,
}

func tokenErr(rule, format string, args ...any) error {
	return &TokenError{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// ParseToken applies the checks an EKS authenticator makes before it calls STS: length, prefix,
// encoding, https, an STS host of the partition without port, path "/", only the known query
// parameters each exactly once, Action=GetCallerIdentity, x-k8s-aws-id signed, X-Amz-Expires an
// integer in 0..900, X-Amz-Date within the last 15 minutes; and, stricter than the reference
// verifier, a credential scope for service sts in the host's region. Errors are *TokenError.
func ParseToken(token string, opts ValidateOptions) (*ParsedToken, error) {
	p, ok := iamarn.PartitionByID(opts.Partition)
	if !ok {
		return nil, fmt.Errorf("eksauth: ValidateOptions.Partition %q is not a known partition (%s)", opts.Partition, strings.Join(iamarn.PartitionIDs(), ", "))
	}
	if len(token) > MaxTokenLength {
		return nil, tokenErr("length", "%d bytes, the limit is %d (shorter session tokens are needed)", len(token), MaxTokenLength)
	}
	if !strings.HasPrefix(token, TokenPrefix) {
		return nil, tokenErr("prefix", "missing %q", TokenPrefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(token[len(TokenPrefix):])
	if err != nil {
		return nil, tokenErr("encoding", "not unpadded base64url: %v", err)
	}
	u, err := url.Parse(string(raw))
	if err != nil {
		return nil, tokenErr("url", "%v", err)
	}
	if u.Scheme != "https" {
		return nil, tokenErr("scheme", "%q, want https", u.Scheme)
	}
	if u.User != nil || u.Fragment != "" {
		return nil, tokenErr("url", "user info or fragment present")
	}
	region, err := checkSTSHost(u.Host, p)
	if err != nil {
		return nil, tokenErr("host", "%v", err)
	}
	if u.Path != "/" {
		return nil, tokenErr("path", "%q, want /", u.Path)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, tokenErr("query", "malformed: %v", err)
	}
	lower := map[string]string{}
	for k, vs := range q {
		lk := strings.ToLower(k)
		if !allowedParams[lk] {
			return nil, tokenErr("query", "parameter %q is not allowed", k)
		}
		if _, dup := lower[lk]; dup || len(vs) != 1 {
			return nil, tokenErr("query", "parameter %q must appear exactly once", k)
		}
		lower[lk] = vs[0]
	}
	if lower["action"] != "GetCallerIdentity" {
		return nil, tokenErr("action", "%q, want GetCallerIdentity", lower["action"])
	}
	signedHeaders := strings.Split(lower["x-amz-signedheaders"], ";")
	hasID := false
	for _, h := range signedHeaders {
		if strings.EqualFold(h, ClusterIDHeader) {
			hasID = true
		}
	}
	if !hasID {
		return nil, tokenErr("signed-headers", "%s is not signed", ClusterIDHeader)
	}
	expires, err := strconv.Atoi(lower["x-amz-expires"])
	if err != nil || expires < 0 || expires > 900 {
		return nil, tokenErr("expires", "X-Amz-Expires %q must be an integer in 0..900", lower["x-amz-expires"])
	}
	signedAt, err := time.Parse(amzDateLayout, lower["x-amz-date"])
	if err != nil {
		return nil, tokenErr("date", "X-Amz-Date %q: %v", lower["x-amz-date"], err)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	skew := opts.MaxFutureSkew
	if skew == 0 {
		skew = 5 * time.Minute
	}
	t := now()
	if t.After(signedAt.Add(TokenValidity)) {
		return nil, &TokenError{Rule: "date", Reason: fmt.Sprintf("signed %s, more than %s ago", signedAt.Format(time.RFC3339), TokenValidity), Expired: true}
	}
	if signedAt.After(t.Add(skew)) {
		return nil, tokenErr("date", "signed %s, in the future", signedAt.Format(time.RFC3339))
	}
	if lower["x-amz-algorithm"] != "AWS4-HMAC-SHA256" {
		return nil, tokenErr("algorithm", "%q, want AWS4-HMAC-SHA256", lower["x-amz-algorithm"])
	}
	scope := strings.Split(lower["x-amz-credential"], "/")
	if len(scope) != 5 || scope[0] == "" || scope[3] != "sts" || scope[4] != "aws4_request" {
		return nil, tokenErr("credential", "malformed credential scope")
	}
	if scope[2] != region {
		return nil, tokenErr("credential", "signed for region %s but names the STS endpoint of %s", scope[2], region)
	}
	if lower["x-amz-signature"] == "" {
		return nil, tokenErr("signature", "X-Amz-Signature missing")
	}
	return &ParsedToken{
		URL: u, Host: u.Host, Region: region, Partition: p.ID, SigningRegion: scope[2], AccessKeyID: scope[0],
		SessionToken: lower["x-amz-security-token"] != "", SignedAt: signedAt, ExpiresAt: signedAt.Add(TokenValidity),
	}, nil
}
