package awsfake_test

import (
	"context"
	"crypto"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"

	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/oidc"
)

// webIdentityWorld is an issuer publishing its documents with oidc.NewHandler (what an S3 bucket
// serves after oidc/publish), an IAM OIDC provider for it and a role whose trust policy is the one
// oidc.TrustPolicy generates for apps/s3-reader.
type webIdentityWorld struct {
	set      *awsfake.Set
	key      crypto.Signer
	kid      string
	role     string
	provider string
	dir      string
}

func newWebIdentityWorld(t *testing.T) *webIdentityWorld {
	t.Helper()
	key := newKey(t)
	k, err := oidc.NewKey(key.Public())
	require.NoError(t, err)
	h, err := oidc.NewHandler(issuer, []oidc.Key{k}, oidc.DocumentOptions{})
	require.NoError(t, err)
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)

	set := start(t, key)
	set.SetIssuerClient(awsfake.IssuerClient(srv))
	// Two client ids, as REFERENCE.md section 6 suggests for pod identity on other clusters: the
	// trust policy, not the provider, then decides which audience a role accepts.
	providerARN, err := set.CreateOIDCProvider(awsfake.OIDCProvider{URL: issuer, ClientIDs: []string{oidc.DefaultAudience, awsfake.PodIdentityAudience}})
	require.NoError(t, err)
	policy, err := oidc.TrustPolicy(oidc.TrustPolicyOptions{ProviderARN: providerARN, Issuer: issuer, Namespace: "apps", ServiceAccount: "s3-reader"})
	require.NoError(t, err)
	roleARN, err := set.CreateRole("s3-reader", policy)
	require.NoError(t, err)
	return &webIdentityWorld{set: set, key: key, kid: k.ID, role: roleARN, provider: providerARN, dir: t.TempDir()}
}

type tokenSpec struct {
	sub      string
	aud      []string
	exp, nbf time.Time
	key      crypto.Signer
	kid      string
	iss      string
}

// token signs a service-account token shaped like kube-apiserver's (RS256, kid of the PKIX key)
// and writes it to a file, as kubelet writes the projected token.
func (w *webIdentityWorld) token(t *testing.T, s tokenSpec) string {
	t.Helper()
	if s.sub == "" {
		s.sub = "system:serviceaccount:apps:s3-reader"
	}
	if s.aud == nil {
		s.aud = []string{oidc.DefaultAudience}
	}
	if s.exp.IsZero() {
		s.exp = time.Now().Add(time.Hour)
	}
	if s.nbf.IsZero() {
		s.nbf = time.Now().Add(-time.Minute)
	}
	if s.key == nil {
		s.key, s.kid = w.key, w.kid
	}
	if s.iss == "" {
		s.iss = issuer
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: s.key, KeyID: s.kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(t, err)
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: s.iss, Subject: s.sub, Audience: s.aud,
		Expiry: jwt.NewNumericDate(s.exp), NotBefore: jwt.NewNumericDate(s.nbf), IssuedAt: jwt.NewNumericDate(s.nbf),
	}).Serialize()
	require.NoError(t, err)
	p := filepath.Join(w.dir, strings.ReplaceAll(t.Name(), "/", "_")+".token")
	require.NoError(t, os.WriteFile(p, []byte(raw), 0o600))
	return p
}

// stsClient is an STS client with no credentials at all: AssumeRoleWithWebIdentity must work
// unsigned. One attempt, so refusals are not retried (the provider retries InvalidIdentityToken).
func (w *webIdentityWorld) stsClient() *sts.Client {
	return sts.New(sts.Options{
		Region: w.set.Region(), BaseEndpoint: aws.String(w.set.STS.URL), HTTPClient: w.set.STS.Client(),
		RetryMaxAttempts: 1,
	})
}

func apiErrorCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	require.True(t, errors.As(err, &ae), "want an API error, got %v", err)
	return ae.ErrorCode()
}

// The workload side is the SDK's own web identity provider, unchanged:
// aws-sdk-go-v2 credentials/stscreds/web_identity_provider.go (Retrieve: reads the token file, a
// RoleSessionName of the current UnixNano when none is set, AssumeRoleWithWebIdentity with
// InvalidIdentityToken added to the retryable codes) and service/sts (auth.go resolves
// AssumeRoleWithWebIdentity to the anonymous auth scheme; serializers.go POSTs the awsQuery form
// Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn&RoleSessionName&WebIdentityToken).
func TestAssumeRoleWithWebIdentitySDKProvider(t *testing.T) {
	w := newWebIdentityWorld(t)
	ctx := context.Background()
	prov := stscreds.NewWebIdentityRoleProvider(w.stsClient(), w.role, stscreds.IdentityTokenFile(w.token(t, tokenSpec{})),
		func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = "app-1" })
	creds, err := prov.Retrieve(ctx)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(creds.AccessKeyID, "ASIA"))
	require.Equal(t, w.set.AccountID(), creds.AccountID)
	require.WithinDuration(t, time.Now().Add(time.Hour), creds.Expires, time.Minute)

	// The request went out unsigned, as the form the serializer writes.
	reqs := w.set.STS.Requests()
	require.Len(t, reqs, 1)
	require.Empty(t, reqs[0].AccessKeyID)
	require.Empty(t, reqs[0].Header.Get("Authorization"))
	require.Contains(t, string(reqs[0].Body), "Action=AssumeRoleWithWebIdentity")

	// GetCallerIdentity, signed with the returned credentials, names the assumed role and session.
	cfg := aws.Config{Region: w.set.Region(), HTTPClient: w.set.STS.Client(), BaseEndpoint: aws.String(w.set.STS.URL), Credentials: aws.NewCredentialsCache(prov)}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	require.Equal(t, "arn:aws:sts::"+w.set.AccountID()+":assumed-role/s3-reader/app-1", aws.ToString(id.Arn))
	require.Equal(t, w.set.AccountID(), aws.ToString(id.Account))
	require.True(t, strings.HasPrefix(aws.ToString(id.UserId), "AROA") && strings.HasSuffix(aws.ToString(id.UserId), ":app-1"), aws.ToString(id.UserId))

	// The full response, through the SDK's deserializer.
	out, err := w.stsClient().AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(w.role), RoleSessionName: aws.String("app-2"), WebIdentityToken: aws.String(readFile(t, w.token(t, tokenSpec{}))), DurationSeconds: aws.Int32(900),
	})
	require.NoError(t, err)
	require.Equal(t, "system:serviceaccount:apps:s3-reader", aws.ToString(out.SubjectFromWebIdentityToken))
	require.Equal(t, oidc.DefaultAudience, aws.ToString(out.Audience))
	require.Equal(t, w.provider, aws.ToString(out.Provider))
	require.WithinDuration(t, time.Now().Add(15*time.Minute), aws.ToTime(out.Credentials.Expiration), time.Minute)
}

// config.LoadDefaultConfig with the variables the pod identity webhook injects
// (aws-sdk-go-v2 config/env_config.go: AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE,
// AWS_ROLE_SESSION_NAME; config/resolve_credentials.go picks the web identity provider), the local
// endpoint reached through AWS_ENDPOINT_URL_STS and AWS_CA_BUNDLE.
func TestAssumeRoleWithWebIdentityLoadDefaultConfig(t *testing.T) {
	w := newWebIdentityWorld(t)
	bundle := filepath.Join(w.dir, "ca.pem")
	require.NoError(t, os.WriteFile(bundle, w.set.CAPEM(), 0o600))
	for k, v := range map[string]string{
		"AWS_ROLE_ARN": w.role, "AWS_WEB_IDENTITY_TOKEN_FILE": w.token(t, tokenSpec{}),
		"AWS_REGION": w.set.Region(), "AWS_STS_REGIONAL_ENDPOINTS": "regional",
		"AWS_ENDPOINT_URL_STS": w.set.STS.URL, "AWS_CA_BUNDLE": bundle, "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(w.dir, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(w.dir, "none"),
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_ROLE_SESSION_NAME": "",
	} {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	require.NoError(t, err)
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	// Without AWS_ROLE_SESSION_NAME the provider names the session after the current UnixNano.
	prefix := "arn:aws:sts::" + w.set.AccountID() + ":assumed-role/s3-reader/"
	require.True(t, strings.HasPrefix(aws.ToString(id.Arn), prefix), aws.ToString(id.Arn))
	require.Regexp(t, `^[0-9]{19}$`, strings.TrimPrefix(aws.ToString(id.Arn), prefix))
}

// Refusals carry the codes and messages real STS answers with (error codes from the STS API
// reference for AssumeRoleWithWebIdentity and aws-sdk-go-v2 service/sts deserializers.go; messages
// as users report them: "Incorrect token audience" (awslabs/amazon-eks-irsa-cfn#18), "No
// OpenIDConnect provider found in your account for ..." (aws-actions/configure-aws-credentials#280),
// "Token expired: current date/time ... must be before the expiration date/time ..."
// (awslabs/aws-orbit-workbench#771), "Not authorized to perform sts:AssumeRoleWithWebIdentity" for a
// trust policy that does not match).
func TestAssumeRoleWithWebIdentityRefusals(t *testing.T) {
	w := newWebIdentityWorld(t)
	other := newKey(t)
	otherKey, err := oidc.NewKey(other.Public())
	require.NoError(t, err)
	cases := []struct {
		name         string
		spec         tokenSpec
		role         string
		code, substr string
	}{
		{"another service account", tokenSpec{sub: "system:serviceaccount:apps:other"}, "", "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"},
		{"another namespace", tokenSpec{sub: "system:serviceaccount:default:s3-reader"}, "", "AccessDenied", "Not authorized"},
		{"audience not a client id", tokenSpec{aud: []string{"someone-else"}}, "", "InvalidIdentityToken", "Incorrect token audience"},
		{"client id the trust policy does not name", tokenSpec{aud: []string{awsfake.PodIdentityAudience}}, "", "AccessDenied", "Not authorized"},
		{"expired", tokenSpec{exp: time.Now().Add(-10 * time.Minute), nbf: time.Now().Add(-time.Hour)}, "", "ExpiredTokenException", "Token expired: current date/time"},
		{"signed by another key", tokenSpec{key: other, kid: otherKey.ID}, "", "InvalidIdentityToken", "Couldn't retrieve verification key"},
		{"another key under the published kid", tokenSpec{key: other, kid: w.kid}, "", "InvalidIdentityToken", "signature invalid"},
		{"not yet valid", tokenSpec{nbf: time.Now().Add(time.Hour)}, "", "InvalidIdentityToken", "not yet valid"},
		{"unknown issuer", tokenSpec{iss: "https://issuer.example.com"}, "", "InvalidIdentityToken", "No OpenIDConnect provider found in your account for https://issuer.example.com"},
		{"unknown role", tokenSpec{}, "arn:aws:iam::111122223333:role/nope", "AccessDenied", "Not authorized"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			role := w.role
			if c.role != "" {
				role = c.role
			}
			before := w.set.WebIdentityCalls()
			_, err := stscreds.NewWebIdentityRoleProvider(w.stsClient(), role, stscreds.IdentityTokenFile(w.token(t, c.spec))).Retrieve(context.Background())
			require.Error(t, err)
			require.Equal(t, c.code, apiErrorCode(t, err), "%v", err)
			require.Contains(t, err.Error(), c.substr)
			require.Equal(t, before+1, w.set.WebIdentityCalls())
		})
	}
}

// The endpoint takes anonymous requests for AssumeRoleWithWebIdentity; GetCallerIdentity still needs a signature.
func TestGetCallerIdentityNeedsASignature(t *testing.T) {
	w := newWebIdentityWorld(t)
	req, err := http.NewRequest(http.MethodPost, w.set.STS.URL+"/", strings.NewReader("Action=GetCallerIdentity&Version=2011-06-15"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := w.set.STS.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Contains(t, string(body), "<Code>MissingAuthenticationToken</Code>")
}

func TestCreateRoleRefusesWhatItCannotEvaluate(t *testing.T) {
	set := start(t, newKey(t))
	for name, doc := range map[string]string{
		"numeric operator": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"NumericLessThan":{"a:b":"1"}}}]}`,
		"NotPrincipal":     `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotPrincipal":{"Federated":"x"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`,
		"no version":       `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:*"}]}`,
		"not JSON":         `{`,
	} {
		_, err := set.CreateRole("r", []byte(doc))
		require.ErrorContains(t, err, "MalformedPolicyDocument", name)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}
