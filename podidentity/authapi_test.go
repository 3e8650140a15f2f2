package podidentity

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ekslink/ekslink/envtest/awstest"
)

const authTestToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDphcHAifQ.c2ln"

func authTestFastRetryer(max int) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = max
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
	})
}

func authTestSuccess(w http.ResponseWriter, r *http.Request) {
	awstest.WriteJSON(w, "", map[string]any{
		"subject":  map[string]string{"namespace": "default", "serviceAccount": "app"},
		"audience": "pods.eks.amazonaws.com",
		"podIdentityAssociation": map[string]string{
			"associationArn": "arn:aws:eks:us-west-2:111122223333:podidentityassociation/c1/a-1",
			"associationId":  "a-1",
		},
		"assumedRoleUser": map[string]string{"arn": "arn:aws:sts::111122223333:assumed-role/app/eks-c1-app", "assumeRoleId": "AROA:eks-c1-app"},
		"credentials": map[string]any{
			"sessionToken": "SESSION", "secretAccessKey": "SECRET", "accessKeyId": "ASIAEXAMPLE",
			"expiration": 1798761600.5,
		},
	})
}

func newAuthTestClient(t *testing.T, s *awstest.Server, optFns ...func(*Options)) *Client {
	t.Helper()
	fast := func(o *Options) { o.Retryer = authTestFastRetryer(3) }
	c, err := NewFromConfig(s.Config(), append([]func(*Options){withoutEnv, fast}, optFns...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAssumeRoleForPodIdentitySignedRequestAndDecodedAnswer(t *testing.T) {
	s := awstest.New(t, awstest.Options{Service: "eks-auth", Protocol: awstest.RESTJSON})
	s.Handle("POST /clusters/{name}/assume-role-for-pod-identity", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "prod-1" {
			t.Errorf("cluster in path = %q", r.PathValue("name"))
		}
		authTestSuccess(w, r)
	})
	c := newAuthTestClient(t, s)
	out, err := c.AssumeRoleForPodIdentity(context.Background(), "prod-1", authTestToken)
	if err != nil {
		t.Fatal(err)
	}
	want := AuthCredentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "SECRET", SessionToken: "SESSION", Expiration: time.Unix(1798761600, 500e6).UTC()}
	if out.Credentials != want {
		t.Errorf("credentials = %+v, want %+v", out.Credentials, want)
	}
	if out.Subject != (AuthSubject{Namespace: "default", ServiceAccount: "app"}) || out.Audience != "pods.eks.amazonaws.com" ||
		out.PodIdentityAssociation.AssociationID != "a-1" || out.AssumedRoleUser.ARN != "arn:aws:sts::111122223333:assumed-role/app/eks-c1-app" {
		t.Errorf("decoded output = %+v", out)
	}
	reqs := s.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	var body map[string]string
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil || body["token"] != authTestToken || len(body) != 1 {
		t.Errorf("body = %s, want {\"token\": ...}", reqs[0].Body)
	}
	if reqs[0].AccessKeyID != awstest.AccessKeyID {
		t.Errorf("signed by %q", reqs[0].AccessKeyID)
	}
	if !strings.Contains(reqs[0].Header.Get("Authorization"), "/eks-auth/aws4_request") {
		t.Errorf("not signed for eks-auth: %s", reqs[0].Header.Get("Authorization"))
	}
}

func TestAssumeRoleForPodIdentityTypedErrors(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		errorType string
		want      AuthErrorCode
		attempts  int
	}{
		{"invalid token is not retried", 400, "InvalidTokenException", AuthInvalidTokenException, 1},
		{"expired token is not retried", 400, "ExpiredTokenException", AuthExpiredTokenException, 1},
		{"access denied is not retried", 400, "AccessDeniedException", AuthAccessDeniedException, 1},
		{"missing association is not retried", 404, "ResourceNotFoundException", AuthResourceNotFoundException, 1},
		{"invalid request is not retried", 400, "InvalidRequestException", AuthInvalidRequestException, 1},
		{"invalid parameter is not retried", 400, "InvalidParameterException", AuthInvalidParameterException, 1},
		{"throttling is retried", 429, "ThrottlingException", AuthThrottlingException, 3},
		{"internal error is retried", 500, "InternalServerException", AuthInternalServerException, 3},
		{"unavailable is retried", 503, "ServiceUnavailableException", AuthServiceUnavailableException, 3},
		{"namespaced error type is sanitized", 404, "com.amazonaws.eksauth#ResourceNotFoundException:http://internal", AuthResourceNotFoundException, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := awstest.New(t, awstest.Options{Service: "eks-auth", Protocol: awstest.RESTJSON})
			s.Handle("POST /clusters/{name}/assume-role-for-pod-identity", func(w http.ResponseWriter, r *http.Request) {
				awstest.WriteRESTJSONError(w, tc.status, tc.errorType, "nope")
			})
			c := newAuthTestClient(t, s)
			_, err := c.AssumeRoleForPodIdentity(context.Background(), "c1", authTestToken)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want errors.Is %s", err, tc.want)
			}
			var ae *AuthError
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || ae.Message != "nope" {
				t.Fatalf("errors.As AuthError: %#v", ae)
			}
			if n := len(s.Requests()); n != tc.attempts {
				t.Errorf("%d attempts, want %d", n, tc.attempts)
			}
		})
	}
}

func TestAssumeRoleForPodIdentityRetriesThrottlingThenSucceeds(t *testing.T) {
	s := awstest.New(t, awstest.Options{Service: "eks-auth", Protocol: awstest.RESTJSON})
	var n atomic.Int32
	s.Handle("POST /clusters/{name}/assume-role-for-pod-identity", func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			awstest.WriteRESTJSONError(w, 429, "ThrottlingException", "slow down")
			return
		}
		authTestSuccess(w, r)
	})
	c := newAuthTestClient(t, s)
	if _, err := c.AssumeRoleForPodIdentity(context.Background(), "c1", authTestToken); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Errorf("%d calls, want 2", n.Load())
	}
}

func TestAssumeRoleForPodIdentityAttemptTimeout(t *testing.T) {
	s := awstest.New(t, awstest.Options{Service: "eks-auth", Protocol: awstest.RESTJSON})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s.Handle("POST /clusters/{name}/assume-role-for-pod-identity", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	// 250ms leaves room for a TLS handshake on a loaded machine: an attempt that times out before
	// the server sees it would not be counted below.
	c := newAuthTestClient(t, s, func(o *Options) { o.AttemptTimeout, o.Retryer = 250*time.Millisecond, authTestFastRetryer(2) })
	start := time.Now()
	_, err := c.AssumeRoleForPodIdentity(context.Background(), "c1", authTestToken)
	var te *AuthAttemptTimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want AuthAttemptTimeoutError", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s; attempts are bounded at 250ms", d)
	}
	if n := len(s.Requests()); n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}
}

func TestAssumeRoleForPodIdentityRefusesBadInputWithoutCalling(t *testing.T) {
	s := awstest.New(t, awstest.Options{Service: "eks-auth", Protocol: awstest.RESTJSON})
	c := newAuthTestClient(t, s)
	for _, tc := range []struct{ name, cluster, token string }{
		{"empty cluster", "", authTestToken},
		{"cluster with slash", "a/b", authTestToken},
		{"empty token", "c1", ""},
		{"huge token", "c1", strings.Repeat("a", AuthMaxTokenBytes+1)},
	} {
		if _, err := c.AssumeRoleForPodIdentity(context.Background(), tc.cluster, tc.token); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d requests sent for invalid input", n)
	}
}

func TestAuthEndpointResolution(t *testing.T) {
	fns := func(f ...func(*Options)) []func(*Options) { return f }
	creds := credentials.NewStaticCredentialsProvider("a", "b", "")
	cases := []struct {
		name    string
		cfg     aws.Config
		opts    []func(*Options)
		want    string
		wantErr bool
	}{
		{"commercial region uses the dual-stack suffix", aws.Config{Region: "us-west-2"}, nil, "https://eks-auth.us-west-2.api.aws", false},
		{"china region", aws.Config{Region: "cn-north-1"}, nil, "https://eks-auth.cn-north-1.api.amazonwebservices.com.cn", false},
		{"fips", aws.Config{Region: "us-gov-west-1"}, fns(func(o *Options) { o.UseFIPS = true }), "https://eks-auth-fips.us-gov-west-1.api.aws", false},
		{"options region wins", aws.Config{Region: "us-west-2"}, fns(func(o *Options) { o.Region = "eu-west-1" }), "https://eks-auth.eu-west-1.api.aws", false},
		{"config base endpoint", aws.Config{Region: "us-west-2", BaseEndpoint: aws.String("https://cfg.example")}, nil, "https://cfg.example", false},
		{"service env beats config base endpoint", aws.Config{Region: "us-west-2", BaseEndpoint: aws.String("https://cfg.example")},
			fns(withEnv(map[string]string{AuthEndpointEnv: "http://127.0.0.1:9/"})), "http://127.0.0.1:9", false},
		{"ignore configured endpoints", aws.Config{Region: "us-west-2"},
			fns(withEnv(map[string]string{AuthEndpointEnv: "https://x", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"})), "https://eks-auth.us-west-2.api.aws", false},
		{"explicit option beats env", aws.Config{Region: "us-west-2"},
			fns(withEnv(map[string]string{AuthEndpointEnv: "https://x"}), func(o *Options) { o.BaseEndpoint = aws.String("https://opt.example") }), "https://opt.example", false},
		{"no region is an error", aws.Config{}, nil, "", true},
		{"unknown dual-stack suffix is an error", aws.Config{Region: "us-iso-east-1"}, nil, "", true},
		{"FIPS pseudo-region is an error, not the aws partition", aws.Config{Region: "fips-us-gov-west-1"}, nil, "", true},
		{"endpoint without scheme is an error", aws.Config{Region: "us-west-2"}, fns(func(o *Options) { o.BaseEndpoint = aws.String("eks-auth.local") }), "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Credentials = creds
			c, err := NewFromConfig(tc.cfg, append([]func(*Options){withoutEnv}, tc.opts...)...)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("endpoint %s resolved, want an error", c.Endpoint())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Endpoint() != tc.want {
				t.Errorf("endpoint = %s, want %s", c.Endpoint(), tc.want)
			}
		})
	}
	if _, err := NewFromConfig(aws.Config{Region: "us-west-2"}, withoutEnv); err == nil {
		t.Error("no credentials accepted")
	}
}

func BenchmarkAssumeRoleForPodIdentity(b *testing.B) {
	s := awstest.New(b, awstest.Options{Service: "eks-auth", Protocol: awstest.RESTJSON})
	s.Handle("POST /clusters/{name}/assume-role-for-pod-identity", authTestSuccess)
	c, err := NewFromConfig(s.Config(), withoutEnv)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.AssumeRoleForPodIdentity(ctx, "c1", authTestToken); err != nil {
			b.Fatal(err)
		}
	}
}

type countingHTTPClient struct {
	next  aws.HTTPClient
	calls atomic.Int32
}

func (c *countingHTTPClient) Do(r *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	return c.next.Do(r)
}

// NewFromConfig follows the aws-sdk-go-v2 convention: the option functions see Options already
// filled from the aws.Config (region, HTTP client, the config's retryer) and what they set is used.
func TestNewFromConfigFillsOptionsFromTheConfigBeforeTheOptionFunctions(t *testing.T) {
	s := awstest.New(t, awstest.Options{Service: "eks-auth", Protocol: awstest.RESTJSON})
	s.Handle("POST /clusters/{name}/assume-role-for-pod-identity", authTestSuccess)
	cfg := s.Config()
	cfg.Retryer = func() aws.Retryer { return authTestFastRetryer(1) }
	var seen Options
	counting := &countingHTTPClient{}
	c, err := NewFromConfig(cfg, withoutEnv, func(o *Options) {
		seen = *o
		counting.next = o.HTTPClient
		o.HTTPClient = counting
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen.Region != cfg.Region || seen.HTTPClient != cfg.HTTPClient || seen.Retryer == nil || seen.Retryer.MaxAttempts() != 1 {
		t.Fatalf("options given to the option function = region %q, HTTP client %v, retryer %v; want the config's", seen.Region, seen.HTTPClient, seen.Retryer)
	}
	if _, err := c.AssumeRoleForPodIdentity(t.Context(), "c1", authTestToken); err != nil {
		t.Fatal(err)
	}
	if counting.calls.Load() != 1 {
		t.Errorf("HTTP client set by the option function sent %d requests, want 1", counting.calls.Load())
	}
}
