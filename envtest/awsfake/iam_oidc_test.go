package awsfake_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/require"

	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/oidc"
)

// One IAM: the OIDC provider and the role are made through the IAM endpoint with the SDK's own IAM
// client (the calls oidc/publish and a user's pipeline make: CreateOpenIDConnectProvider, CreateRole
// with the trust policy oidc.TrustPolicy writes), and STS AssumeRoleWithWebIdentity evaluates exactly
// those: a change of the trust policy (UpdateAssumeRolePolicy) or of the provider's client ids
// (AddClientIDToOpenIDConnectProvider) through IAM changes STS's answer at once. What the Go helpers
// Set.CreateOIDCProvider and Set.CreateRole make is what the IAM endpoint lists and describes.
func TestIAMEndpointRolesAndProvidersAreWhatSTSEvaluates(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	k, err := oidc.NewKey(key.Public())
	require.NoError(t, err)
	h, err := oidc.NewHandler(issuer, []oidc.Key{k}, oidc.DocumentOptions{})
	require.NoError(t, err)
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	set := start(t, key)
	set.SetIssuerClient(awsfake.IssuerClient(srv))
	iamc := iam.NewFromConfig(set.Config(), func(o *iam.Options) { o.BaseEndpoint = aws.String(set.IAM.URL) })
	w := &webIdentityWorld{set: set, key: key, kid: k.ID, dir: t.TempDir()}

	prov, err := iamc.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String(issuer), ClientIDList: []string{oidc.DefaultAudience}})
	require.NoError(t, err)
	w.provider = aws.ToString(prov.OpenIDConnectProviderArn)
	require.Equal(t, "arn:aws:iam::"+set.AccountID()+":oidc-provider/"+strings.TrimPrefix(issuer, "https://"), w.provider)
	trust := func(sa string) string {
		p, err := oidc.TrustPolicy(oidc.TrustPolicyOptions{ProviderARN: w.provider, Issuer: issuer, Namespace: "apps", ServiceAccount: sa})
		require.NoError(t, err)
		return string(p)
	}
	role, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("s3-reader"), AssumeRolePolicyDocument: aws.String(trust("s3-reader"))})
	require.NoError(t, err)
	w.role = aws.ToString(role.Role.Arn)

	assume := func(aud ...string) (*sts.AssumeRoleWithWebIdentityOutput, error) {
		return w.stsClient().AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(w.role), RoleSessionName: aws.String("app"), WebIdentityToken: aws.String(readFile(t, w.token(t, tokenSpec{aud: aud}))),
		})
	}
	out, err := assume()
	require.NoError(t, err)
	require.Equal(t, w.provider, aws.ToString(out.Provider))
	require.Equal(t, aws.ToString(role.Role.RoleId)+":app", aws.ToString(out.AssumedRoleUser.AssumedRoleId), "STS names the role IAM created")

	// The trust policy changed through IAM: STS refuses the same token.
	_, err = iamc.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("s3-reader"), PolicyDocument: aws.String(trust("other"))})
	require.NoError(t, err)
	_, err = assume()
	require.Equal(t, "AccessDenied", apiErrorCode(t, err))
	_, err = iamc.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("s3-reader"), PolicyDocument: aws.String(trust("s3-reader"))})
	require.NoError(t, err)

	// An audience the provider does not list, then listed through IAM (the trust policy still
	// names sts.amazonaws.com for :aud, so STS then refuses it for the role instead).
	_, err = assume(awsfake.PodIdentityAudience)
	require.Equal(t, "InvalidIdentityToken", apiErrorCode(t, err))
	_, err = iamc.AddClientIDToOpenIDConnectProvider(ctx, &iam.AddClientIDToOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(w.provider), ClientID: aws.String(awsfake.PodIdentityAudience)})
	require.NoError(t, err)
	_, err = assume(awsfake.PodIdentityAudience)
	require.Equal(t, "AccessDenied", apiErrorCode(t, err))

	// A trust policy this fake could not evaluate is refused by IAM itself, not ignored by STS.
	_, err = iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("np"), AssumeRolePolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`)})
	require.Equal(t, "MalformedPolicyDocument", apiErrorCode(t, err))
	_, err = iamc.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String(issuer)})
	require.Equal(t, "EntityAlreadyExists", apiErrorCode(t, err))

	// The Go helpers write into the same IAM.
	goRole, err := set.CreateRole("from-go", []byte(trust("s3-reader")))
	require.NoError(t, err)
	got, err := iamc.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("from-go")})
	require.NoError(t, err)
	require.Equal(t, goRole, aws.ToString(got.Role.Arn))
	doc, err := url.QueryUnescape(aws.ToString(got.Role.AssumeRolePolicyDocument))
	require.NoError(t, err)
	require.JSONEq(t, trust("s3-reader"), doc)
	other, err := set.CreateOIDCProvider(awsfake.OIDCProvider{URL: "https://oidc.example.com/cluster-b", ClientIDs: []string{oidc.DefaultAudience}})
	require.NoError(t, err)
	list, err := iamc.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	require.NoError(t, err)
	require.Len(t, list.OpenIDConnectProviderList, 2)
	desc, err := iamc.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(other)})
	require.NoError(t, err)
	require.Equal(t, "oidc.example.com/cluster-b", aws.ToString(desc.Url), "IAM returns the URL without its scheme")
	_, err = set.CreateRole("from-go", []byte(trust("s3-reader")))
	require.ErrorContains(t, err, "EntityAlreadyExists")
}

// One fault mechanism for every operation of every endpoint: Fail queues the answer in the
// operation's protocol, and Calls counts every request, faults included.
func TestFailAndCallsCoverEveryEndpoint(t *testing.T) {
	w := newWebIdentityWorld(t)
	ctx := context.Background()
	w.set.Fail("AssumeRoleWithWebIdentity", 1, http.StatusBadRequest, "Throttling", "Rate exceeded")
	_, err := w.stsClient().AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(w.role), RoleSessionName: aws.String("app"), WebIdentityToken: aws.String(readFile(t, w.token(t, tokenSpec{}))),
	})
	require.Equal(t, "Throttling", apiErrorCode(t, err))
	require.Equal(t, 1, w.set.WebIdentityCalls())

	iamc := iam.NewFromConfig(w.set.Config(), func(o *iam.Options) { o.BaseEndpoint = aws.String(w.set.IAM.URL); o.RetryMaxAttempts = 1 })
	w.set.Fail("GetOpenIDConnectProvider", 1, http.StatusForbidden, "AccessDenied", "User is not authorized to perform: iam:GetOpenIDConnectProvider")
	_, err = iamc.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(w.provider)})
	require.Equal(t, "AccessDenied", apiErrorCode(t, err))
	_, err = iamc.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(w.provider)})
	require.NoError(t, err)
	require.Equal(t, 2, w.set.Calls("GetOpenIDConnectProvider"))
}
