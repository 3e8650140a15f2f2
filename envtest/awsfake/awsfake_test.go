package awsfake_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ekslink/ekslink/envtest/awsfake"
)

const issuer = "https://kubernetes.default.svc.cluster.local"

func start(t *testing.T, key crypto.Signer) *awsfake.Set {
	t.Helper()
	set, err := awsfake.Start(awsfake.Options{ServiceAccountIssuer: issuer, ServiceAccountKeys: []crypto.PublicKey{key.Public()}})
	require.NoError(t, err)
	t.Cleanup(set.Close)
	return set
}

func newKey(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return k
}

func registerManagedInstance(t *testing.T, set *awsfake.Set, id, code, fingerprint string, pub []byte) (int, map[string]string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"ActivationCode": code, "ActivationId": id, "Fingerprint": fingerprint,
		"PublicKey": base64.StdEncoding.EncodeToString(pub), "PublicKeyType": "Rsa"})
	req, _ := http.NewRequest(http.MethodPost, set.SSM.URL+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.RegisterManagedInstance")
	resp, err := set.SSM.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out := map[string]string{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestConnectorRegistrationFlow(t *testing.T) {
	set := start(t, newKey(t))
	ctx := context.Background()
	cfg := set.Config()
	client := eks.NewFromConfig(cfg, func(o *eks.Options) { o.BaseEndpoint = aws.String(set.EKS.URL) })

	reg, err := client.RegisterCluster(ctx, &eks.RegisterClusterInput{
		Name:            aws.String("demo"),
		ConnectorConfig: &ekstypes.ConnectorConfigRequest{Provider: ekstypes.ConnectorConfigProviderEksAnywhere, RoleArn: aws.String("arn:aws:iam::111122223333:role/eks-connector-agent")},
	})
	require.NoError(t, err)
	cc := reg.Cluster.ConnectorConfig
	require.Len(t, aws.ToString(cc.ActivationId), 36)
	require.GreaterOrEqual(t, len(aws.ToString(cc.ActivationCode)), 20)
	require.WithinDuration(t, time.Now().Add(72*time.Hour), aws.ToTime(cc.ActivationExpiry), time.Minute)
	require.Equal(t, ekstypes.ClusterStatusPending, reg.Cluster.Status)

	_, err = client.RegisterCluster(ctx, &eks.RegisterClusterInput{Name: aws.String("demo"),
		ConnectorConfig: &ekstypes.ConnectorConfigRequest{Provider: ekstypes.ConnectorConfigProviderEksAnywhere, RoleArn: aws.String("arn:aws:iam::111122223333:role/x")}})
	var inUse *ekstypes.ResourceInUseException
	require.True(t, errors.As(err, &inUse), "second registration: %v", err)

	agentKey := newKey(t)
	pub, err := x509.MarshalPKIXPublicKey(agentKey.Public())
	require.NoError(t, err)
	fp := uuid.NewString()
	status, out := registerManagedInstance(t, set, *cc.ActivationId, "wrong-code-0000000000000", fp, pub)
	require.Equal(t, 400, status)
	require.Equal(t, "InvalidActivation", out["__type"])

	status, out = registerManagedInstance(t, set, *cc.ActivationId, *cc.ActivationCode, fp, pub)
	require.Equal(t, 200, status, out)
	require.True(t, strings.HasPrefix(out["InstanceId"], "eks_c:demo_"), out["InstanceId"])
	again, out2 := registerManagedInstance(t, set, *cc.ActivationId, *cc.ActivationCode, fp, pub)
	require.Equal(t, 200, again)
	require.Equal(t, out["InstanceId"], out2["InstanceId"], "a retried registration with the same material is the same instance")
	require.Len(t, set.Instances(), 1)

	other := newKey(t)
	otherPub, _ := x509.MarshalPKIXPublicKey(other.Public())
	status, out = registerManagedInstance(t, set, *cc.ActivationId, *cc.ActivationCode, fp, otherPub)
	require.Equal(t, 400, status)
	require.Equal(t, "InstanceAlreadyRegistered", out["__type"])

	desc, err := client.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String("demo")})
	require.NoError(t, err)
	require.Equal(t, ekstypes.ClusterStatusActive, desc.Cluster.Status)
	require.Nil(t, desc.Cluster.ConnectorConfig.ActivationCode, "the code is only returned by RegisterCluster")

	_, err = client.DeregisterCluster(ctx, &eks.DeregisterClusterInput{Name: aws.String("demo")})
	require.NoError(t, err)
	_, err = client.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String("demo")})
	var nf *ekstypes.ResourceNotFoundException
	require.True(t, errors.As(err, &nf), "after deregistration: %v", err)
}

func podToken(t *testing.T, key crypto.Signer, sub string, aud string, exp time.Time) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(t, err)
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: issuer, Subject: sub, Audience: jwt.Audience{aud},
		Expiry: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(time.Now())}).Serialize()
	require.NoError(t, err)
	return tok
}

func assumeRole(t *testing.T, set *awsfake.Set, cluster, token string) (int, http.Header, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"token": token})
	req, _ := http.NewRequest(http.MethodPost, set.EKSAuth.URL+"/clusters/"+cluster+"/assume-role-for-pod-identity", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256Hex(body)
	creds := set.EKSAuth.Credentials()
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), creds, req, sum, "eks-auth", set.Region(), time.Now()))
	resp, err := set.EKSAuth.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestPodIdentityCredentialsAreRecognisedBySTS(t *testing.T) {
	key := newKey(t)
	set := start(t, key)
	set.Associate(awsfake.Association{Cluster: "demo", Namespace: "apps", ServiceAccount: "reader", RoleARN: "arn:aws:iam::111122223333:role/s3-reader"})

	status, hdr, body := assumeRole(t, set, "demo", podToken(t, key, "system:serviceaccount:apps:reader", awsfake.PodIdentityAudience, time.Now().Add(time.Hour)))
	require.Equal(t, 200, status, string(body))
	var out struct {
		Credentials struct {
			AccessKeyID     string  `json:"accessKeyId"`
			SecretAccessKey string  `json:"secretAccessKey"`
			SessionToken    string  `json:"sessionToken"`
			Expiration      float64 `json:"expiration"`
		} `json:"credentials"`
		AssumedRoleUser struct {
			Arn          string `json:"arn"`
			AssumeRoleID string `json:"assumeRoleId"`
		} `json:"assumedRoleUser"`
	}
	require.NoError(t, json.Unmarshal(body, &out))
	require.Equal(t, "arn:aws:sts::111122223333:assumed-role/s3-reader/eks-demo-reader", out.AssumedRoleUser.Arn)

	cfg := set.Config()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(out.Credentials.AccessKeyID, out.Credentials.SecretAccessKey, out.Credentials.SessionToken)
	id, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(set.STS.URL) }).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	require.Equal(t, out.AssumedRoleUser.Arn, aws.ToString(id.Arn))
	// STS reports an assumed role's UserId as "<role id>:<session name>", the assumeRoleId EKS Auth
	// returned (aws-iam-authenticator splits it at the colon).
	require.Regexp(t, `^AROA[0-9A-Z]+:eks-demo-reader$`, aws.ToString(id.UserId))
	require.Equal(t, out.AssumedRoleUser.AssumeRoleID, aws.ToString(id.UserId))
	_ = hdr

	cases := []struct {
		name, cluster, token, code string
		status                     int
	}{
		{"no association", "demo", podToken(t, key, "system:serviceaccount:apps:other", awsfake.PodIdentityAudience, time.Now().Add(time.Hour)), "ResourceNotFoundException", 404},
		{"wrong audience", "demo", podToken(t, key, "system:serviceaccount:apps:reader", "sts.amazonaws.com", time.Now().Add(time.Hour)), "InvalidTokenException", 400},
		{"expired", "demo", podToken(t, key, "system:serviceaccount:apps:reader", awsfake.PodIdentityAudience, time.Now().Add(-time.Minute)), "ExpiredTokenException", 400},
		{"foreign key", "demo", podToken(t, newKey(t), "system:serviceaccount:apps:reader", awsfake.PodIdentityAudience, time.Now().Add(time.Hour)), "InvalidTokenException", 400},
		{"garbage", "demo", "not-a-jwt", "InvalidTokenException", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := assumeRole(t, set, tc.cluster, tc.token)
			require.Equal(t, tc.status, status, string(body))
			require.Equal(t, tc.code, hdr.Get("X-Amzn-ErrorType"))
		})
	}
}

func TestStaticCallerIdentity(t *testing.T) {
	set := start(t, newKey(t))
	id, err := sts.NewFromConfig(set.Config(), func(o *sts.Options) { o.BaseEndpoint = aws.String(set.STS.URL) }).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	require.Equal(t, set.CallerARN(), aws.ToString(id.Arn))
	require.Equal(t, set.AccountID(), aws.ToString(id.Account))
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// aws-iam-authenticator sends its presigned GetCallerIdentity with Accept: application/json and
// decodes GetCallerIdentityResponse.GetCallerIdentityResult; the SDK gets XML.
func TestCallerIdentityAnswersJSONWhenAskedForPresignedRequests(t *testing.T) {
	set := start(t, newKey(t))
	presigned, err := sts.NewPresignClient(sts.NewFromConfig(set.Config(), func(o *sts.Options) { o.BaseEndpoint = aws.String(set.STS.URL) })).
		PresignGetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	req, _ := http.NewRequest(presigned.Method, presigned.URL, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := set.STS.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var out struct {
		GetCallerIdentityResponse struct {
			GetCallerIdentityResult struct{ Account, Arn, UserId string }
			ResponseMetadata        struct{ RequestId string }
		}
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	r := out.GetCallerIdentityResponse.GetCallerIdentityResult
	require.Equal(t, set.CallerARN(), r.Arn)
	require.Equal(t, set.AccountID(), r.Account)
	require.Regexp(t, `^AIDA`, r.UserId)
	require.NotEmpty(t, out.GetCallerIdentityResponse.ResponseMetadata.RequestId)

	// Tampering with the presigned query is refused in the query protocol's XML error shape.
	bad, _ := http.NewRequest(presigned.Method, strings.Replace(presigned.URL, "Version=2011-06-15", "Version=2011-06-16", 1), nil)
	resp2, err := set.STS.Client().Do(bad)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	require.Equal(t, 403, resp2.StatusCode)
	require.Contains(t, string(body), "<Code>SignatureDoesNotMatch</Code>")
}
