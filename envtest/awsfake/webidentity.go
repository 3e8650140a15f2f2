package awsfake

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ekslink/ekslink/envtest/awstest"
	"github.com/ekslink/ekslink/oidc"
)

const (
	// The messages STS answers with (seen in its error responses; see the test for the sources).
	msgNotAuthorized  = "Not authorized to perform sts:AssumeRoleWithWebIdentity"
	msgNoKey          = "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements"
	msgWrongAudience  = "Incorrect token audience"
	msgNoProviderFmt  = "No OpenIDConnect provider found in your account for %s"
	msgTokenExpiryFmt = "Token expired: current date/time %d must be before the expiration date/time %d"
)

var sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// SetIssuerClient sets the HTTP client STS fetches issuers' discovery documents and key sets with
// (default http.DefaultClient); see IssuerClient for reaching a local issuer under its real name.
func (s *Set) SetIssuerClient(c *http.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issuerClient = c
}

// WebIdentityCalls is the number of AssumeRoleWithWebIdentity calls, successful or not
// (Calls("AssumeRoleWithWebIdentity")).
func (s *Set) WebIdentityCalls() int { return s.Calls("AssumeRoleWithWebIdentity") }

// IssuerClient returns an HTTP client that reaches srv (an httptest TLS server) for every https URL,
// whatever its host name, and trusts srv's certificate: the loopback stand-in for the DNS and public
// TLS STS relies on to fetch https://<issuer>/.well-known/openid-configuration.
func IssuerClient(srv *httptest.Server) *http.Client {
	base := srv.Client().Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	base.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	tlsConf := base.TLSClientConfig.Clone()
	// httptest's certificate names example.com; verification still checks the chain and that name.
	tlsConf.ServerName = "example.com"
	base.TLSClientConfig = tlsConf
	base.DialTLSContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		d := tls.Dialer{Config: tlsConf}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: base, Timeout: 10 * time.Second}
}

// stsError is an awsQuery error answer.
type stsError struct {
	status        int
	code, message string
}

func (e *stsError) Error() string { return e.code + ": " + e.message }

// assumeRoleWithWebIdentity follows STS: the request is anonymous; the token's issuer must be an
// IAM OIDC provider of the account; the token must verify against the key set the issuer's
// discovery document points to, carry one of the provider's client ids as audience and be
// unexpired; the role's trust policy must allow the provider for sts:AssumeRoleWithWebIdentity
// with the <issuer host/path>:sub and :aud condition keys of this token.
func (s *Set) assumeRoleWithWebIdentity(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		awstest.WriteQueryError(w, http.StatusBadRequest, "MalformedInput", err.Error())
		return
	}
	out, err := s.webIdentityCredentials(r.Context(), r.PostForm)
	if err != nil {
		var se *stsError
		if !errors.As(err, &se) {
			se = &stsError{http.StatusInternalServerError, "InternalFailure", err.Error()}
		}
		awstest.WriteQueryError(w, se.status, se.code, se.message)
		return
	}
	awstest.WriteXML(w, out)
}

type webIdentityResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleWithWebIdentityResponse"`
	Result  struct {
		SubjectFromWebIdentityToken string `xml:"SubjectFromWebIdentityToken"`
		Audience                    string `xml:"Audience"`
		AssumedRoleUser             struct {
			Arn           string `xml:"Arn"`
			AssumedRoleID string `xml:"AssumedRoleId"`
		} `xml:"AssumedRoleUser"`
		Credentials struct {
			AccessKeyID     string `xml:"AccessKeyId"`
			SecretAccessKey string `xml:"SecretAccessKey"`
			SessionToken    string `xml:"SessionToken"`
			Expiration      string `xml:"Expiration"`
		} `xml:"Credentials"`
		Provider string `xml:"Provider"`
	} `xml:"AssumeRoleWithWebIdentityResult"`
	Metadata struct {
		RequestID string `xml:"RequestId"`
	} `xml:"ResponseMetadata"`
}

func validation(format string, args ...any) error {
	return &stsError{http.StatusBadRequest, "ValidationError", fmt.Sprintf(format, args...)}
}

func (s *Set) webIdentityCredentials(ctx context.Context, form url.Values) (*webIdentityResponse, error) {
	roleARN, session, token := form.Get("RoleArn"), form.Get("RoleSessionName"), form.Get("WebIdentityToken")
	switch {
	case roleARN == "":
		return nil, validation("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
	case !sessionNamePattern.MatchString(session):
		return nil, validation("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64", session)
	case len(token) < 4 || len(token) > oidc.MaxTokenLength:
		return nil, validation("1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and %d", oidc.MaxTokenLength)
	}
	duration := time.Hour
	if d := form.Get("DurationSeconds"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 900 || n > 43200 {
			return nil, validation("1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", d)
		}
		if n > 3600 {
			return nil, validation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
		}
		duration = time.Duration(n) * time.Second
	}

	// The issuer names the provider; nothing in the token is trusted before the signature checks.
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512})
	if err != nil {
		return nil, &stsError{http.StatusBadRequest, "InvalidIdentityToken", "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)"}
	}
	var unverified jwt.Claims
	if err := parsed.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, &stsError{http.StatusBadRequest, "InvalidIdentityToken", "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)"}
	}
	// The provider and the role are the IAM endpoint's (iam_oidc.go, iam.go), read as they are now.
	providerARN := "arn:aws:iam::" + s.opts.AccountID + ":oidc-provider/" + oidc.IssuerHostPath(unverified.Issuer)
	s.mu.Lock()
	var provider OIDCProvider
	p, ok := s.providers[providerARN]
	if ok {
		provider = OIDCProvider{URL: p.URL, ClientIDs: slices.Clone(p.ClientIDs)}
	}
	var roleName, roleID, trustDoc string
	if r := s.roleByARN(roleARN); r != nil {
		roleName, roleID, trustDoc = r.Name, r.id, r.TrustPolicy
	}
	client := s.issuerClient
	s.mu.Unlock()
	if client == nil {
		client = http.DefaultClient
	}
	if !ok || provider.URL != unverified.Issuer {
		return nil, &stsError{http.StatusBadRequest, "InvalidIdentityToken", fmt.Sprintf(msgNoProviderFmt, unverified.Issuer)}
	}

	published, err := oidc.Fetch(ctx, client, provider.URL)
	if err != nil {
		// Whether the issuer is unreachable, answers non-200 or serves no usable key set, STS
		// says it could not retrieve the verification key.
		return nil, &stsError{http.StatusBadRequest, "InvalidIdentityToken", msgNoKey}
	}
	// A provider made through the IAM API may have no client id at all: then no audience matches.
	audience := ""
	if len(provider.ClientIDs) > 0 {
		audience = provider.ClientIDs[0]
	}
	for _, a := range unverified.Audience {
		if slices.Contains(provider.ClientIDs, a) {
			audience = a
			break
		}
	}
	if audience == "" {
		return nil, &stsError{http.StatusBadRequest, "InvalidIdentityToken", msgWrongAudience}
	}
	now := s.opts.Now()
	claims, err := oidc.Verify(token, published.JWKS, oidc.Expect{Issuer: provider.URL, Audience: audience, Now: s.opts.Now})
	switch {
	case errors.Is(err, oidc.ErrExpired):
		exp := int64(0)
		if unverified.Expiry != nil {
			exp = unverified.Expiry.Time().Unix()
		}
		return nil, &stsError{http.StatusBadRequest, "ExpiredTokenException", fmt.Sprintf(msgTokenExpiryFmt, now.Unix(), exp)}
	case errors.Is(err, oidc.ErrAudience):
		return nil, &stsError{http.StatusBadRequest, "InvalidIdentityToken", msgWrongAudience}
	case errors.Is(err, oidc.ErrUnknownKeyID), errors.Is(err, oidc.ErrMissingKeyID):
		return nil, &stsError{http.StatusBadRequest, "InvalidIdentityToken", msgNoKey}
	case err != nil:
		return nil, &stsError{http.StatusBadRequest, "InvalidIdentityToken", "The web identity token could not be validated: " + err.Error()}
	}

	hp := oidc.IssuerHostPath(provider.URL)
	keys := map[string][]string{
		strings.ToLower(hp + ":sub"): {claims.Subject},
		strings.ToLower(hp + ":aud"): {audience},
	}
	trust, err := parseTrustPolicy([]byte(trustDoc))
	if roleName == "" || err != nil || !trust.allows("federated", providerARN, "sts:AssumeRoleWithWebIdentity", keys) {
		// STS says the same whether the role is missing or its trust policy does not match.
		return nil, &stsError{http.StatusForbidden, "AccessDenied", msgNotAuthorized}
	}

	creds := aws.Credentials{
		AccessKeyID:     "ASIA" + strings.ToUpper(randomHex(8)),
		SecretAccessKey: randomHex(20),
		SessionToken:    "IQoJb3JpZ2luX2VjE" + randomHex(32),
		CanExpire:       true,
		Expires:         now.Add(duration).UTC().Truncate(time.Second),
	}
	assumedARN := fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", s.opts.AccountID, roleName, session)
	assumedID := roleID + ":" + session
	s.mu.Lock()
	s.issued[creds.AccessKeyID] = issuedRole{arn: assumedARN, userID: assumedID}
	s.mu.Unlock()
	s.STS.AddCredentials(creds)

	out := &webIdentityResponse{}
	out.Result.SubjectFromWebIdentityToken = claims.Subject
	out.Result.Audience = audience
	out.Result.AssumedRoleUser.Arn = assumedARN
	out.Result.AssumedRoleUser.AssumedRoleID = assumedID
	out.Result.Credentials.AccessKeyID = creds.AccessKeyID
	out.Result.Credentials.SecretAccessKey = creds.SecretAccessKey
	out.Result.Credentials.SessionToken = creds.SessionToken
	out.Result.Credentials.Expiration = creds.Expires.Format(time.RFC3339)
	out.Result.Provider = providerARN
	out.Metadata.RequestID = "00000000-0000-4000-8000-000000000000"
	return out, nil
}
