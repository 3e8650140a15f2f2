package registration_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/ekslink/ekslink/envtest/awstest"
	"github.com/ekslink/ekslink/iamarn"
	"github.com/ekslink/ekslink/registration"
)

const (
	testActivationID   = "11111111-2222-4333-8444-555555555555"
	testActivationCode = "ActivationCode0123456789"
)

var noBackoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })

// retryer is the SDK's standard retryer with a 1ms backoff and the given attempts.
func retryer(attempts int) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = attempts; o.Backoff = noBackoff })
}

func ssmServer(t *testing.T) *awstest.Server {
	t.Helper()
	return awstest.New(t, awstest.Options{Service: "ssm", Protocol: awstest.JSON, Anonymous: true})
}

func newClient(t *testing.T, s *awstest.Server, mod func(*registration.ClientOptions)) *registration.Client {
	t.Helper()
	c, err := registration.NewFromConfig(aws.Config{Region: "us-west-2"}, func(o *registration.ClientOptions) {
		o.BaseEndpoint, o.HTTPClient, o.Retryer = aws.String(s.URL), s.Client(), retryer(registration.DefaultMaxAttempts)
		o.AttemptTimeout, o.Timeout = 2*time.Second, 10*time.Second
	}, func(o *registration.ClientOptions) {
		if mod != nil {
			mod(o)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testInput(t *testing.T) registration.RegisterInput {
	t.Helper()
	key, err := registration.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fp, err := registration.NewFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	return registration.RegisterInput{ActivationID: testActivationID, ActivationCode: testActivationCode, Fingerprint: fp, PublicKey: key.PublicKey}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRegisterManagedInstanceWireFormat(t *testing.T) {
	s := ssmServer(t)
	s.HandleTarget("AmazonSSM.RegisterManagedInstance", func(w http.ResponseWriter, r *http.Request) {
		awstest.WriteJSON(w, "application/x-amz-json-1.1", map[string]string{"InstanceId": "mi-0123456789abcdef0"})
	})
	in := testInput(t)
	id, err := newClient(t, s, nil).RegisterManagedInstance(context.Background(), in)
	if err != nil || id != "mi-0123456789abcdef0" {
		t.Fatalf("RegisterManagedInstance = %q, %v", id, err)
	}
	reqs := s.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/" || len(r.Query) != 0 {
		t.Errorf("request %s %s?%v, want POST /", r.Method, r.Path, r.Query)
	}
	if got := r.Header.Get("Content-Type"); got != "application/x-amz-json-1.1" {
		t.Errorf("Content-Type %q", got)
	}
	if got := r.Header.Get("X-Amz-Target"); got != "AmazonSSM.RegisterManagedInstance" {
		t.Errorf("X-Amz-Target %q", got)
	}
	for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"} {
		if v := r.Header.Get(h); v != "" {
			t.Errorf("anonymous request carries %s: %q", h, v)
		}
	}
	if r.AccessKeyID != "" {
		t.Errorf("request was signed by %s", r.AccessKeyID)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"ActivationCode", "ActivationId", "Fingerprint", "PublicKey", "PublicKeyType"}
	if len(keys) != len(want) {
		t.Fatalf("body keys %v, want %v", keys, want)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Fatalf("body keys %v, want %v", keys, want)
		}
	}
	if body["ActivationId"] != testActivationID || body["ActivationCode"] != testActivationCode || body["PublicKeyType"] != "Rsa" {
		t.Errorf("body %v", body)
	}
	if fp, _ := body["Fingerprint"].(string); !uuidV4.MatchString(fp) {
		t.Errorf("Fingerprint %q is not a UUIDv4", fp)
	}
	pk, _ := body["PublicKey"].(string)
	if len(pk) != 392 {
		t.Errorf("PublicKey has %d characters, want 392 (padded standard base64 of a PKIX RSA-2048 key)", len(pk))
	}
	der, err := base64.StdEncoding.DecodeString(pk)
	if err != nil {
		t.Fatalf("PublicKey is not standard base64: %v", err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatalf("PublicKey is not PKIX: %v", err)
	}
	if rk, ok := pub.(*rsa.PublicKey); !ok || rk.N.BitLen() != 2048 {
		t.Errorf("PublicKey is %T, want RSA-2048", pub)
	}
}

func TestRegisterManagedInstanceErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		typ       string
		want      error
		retryable bool
	}{
		{"invalid activation is final", 400, "InvalidActivation", registration.ErrInvalidActivation, false},
		{"namespaced code is understood", 400, "com.amazonaws.ssm#InvalidActivation", registration.ErrInvalidActivation, false},
		{"expired activation is final", 400, "ActivationExpired", registration.ErrActivationExpired, false},
		{"registration limit is final", 400, "RegistrationLimitExceeded", registration.ErrRegistrationLimitExceeded, false},
		{"invalid public key is final", 400, "InvalidPublicKey", registration.ErrInvalidPublicKey, false},
		{"already registered is final", 400, "InstanceAlreadyRegistered", registration.ErrInstanceAlreadyRegistered, false},
		{"unknown client error is final", 400, "ValidationException", nil, false},
		{"too many updates is retried", 400, "TooManyUpdates", nil, true},
		{"throttling is retried", 400, "ThrottlingException", nil, true},
		{"internal server error is retried", 500, "InternalServerError", nil, true},
		{"503 without a code is retried", 503, "", nil, true},
		{"429 is retried", 429, "", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ssmServer(t)
			var calls atomic.Int32
			s.HandleTarget("AmazonSSM.RegisterManagedInstance", func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				if tc.typ == "" {
					w.WriteHeader(tc.status)
					return
				}
				awstest.WriteJSONError(w, tc.status, tc.typ, "details from SSM")
			})
			_, err := newClient(t, s, func(o *registration.ClientOptions) { o.Retryer = retryer(3) }).RegisterManagedInstance(context.Background(), testInput(t))
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v does not match %v", err, tc.want)
			}
			var ae *registration.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %T is not *APIError", err)
			}
			var sae smithy.APIError
			if !errors.As(err, &sae) || sae.ErrorCode() == "" {
				t.Errorf("error is not a smithy.APIError with a code")
			}
			if ae.Retryable() != tc.retryable {
				t.Errorf("Retryable() = %v, want %v", ae.Retryable(), tc.retryable)
			}
			if registration.Final(err) != (tc.want != nil) {
				t.Errorf("Final() = %v", registration.Final(err))
			}
			wantCalls := int32(1)
			if tc.retryable {
				wantCalls = 3
			}
			if calls.Load() != wantCalls {
				t.Errorf("%d attempts, want %d", calls.Load(), wantCalls)
			}
		})
	}
}

func TestRetryableErrorThenSuccess(t *testing.T) {
	s := ssmServer(t)
	var calls atomic.Int32
	s.HandleTarget("AmazonSSM.RegisterManagedInstance", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			awstest.WriteJSONError(w, 400, "TooManyUpdates", "slow down")
			return
		}
		awstest.WriteJSON(w, "", map[string]string{"InstanceId": "mi-1"})
	})
	id, err := newClient(t, s, nil).RegisterManagedInstance(context.Background(), testInput(t))
	if err != nil || id != "mi-1" || calls.Load() != 3 {
		t.Fatalf("id %q err %v after %d calls", id, err, calls.Load())
	}
}

func TestHangingEndpointIsCutOffByTheDeadlines(t *testing.T) {
	s := ssmServer(t)
	var calls atomic.Int32
	s.HandleTarget("AmazonSSM.RegisterManagedInstance", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-r.Context().Done()
	})
	c := newClient(t, s, func(o *registration.ClientOptions) {
		o.AttemptTimeout = 100 * time.Millisecond
		o.Timeout = 450 * time.Millisecond
		o.Retryer = retryer(100)
	})
	start := time.Now()
	_, err := c.RegisterManagedInstance(context.Background(), testInput(t))
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("hanging endpoint: no error")
	}
	if elapsed > 2*time.Second {
		t.Fatalf("hanging endpoint held the call for %v; the 450ms overall deadline did not apply", elapsed)
	}
	if n := calls.Load(); n < 2 {
		t.Errorf("%d attempts: a cut-off attempt must be retried within the overall deadline", n)
	}

	// The caller's own deadline applies too.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	c = newClient(t, s, func(o *registration.ClientOptions) { o.AttemptTimeout = time.Minute })
	start = time.Now()
	if _, err := c.RegisterManagedInstance(ctx, testInput(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller deadline: got %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("caller deadline ignored")
	}
}

func TestNetworkErrorsAreRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close() // reset every connection
		}
	}()
	t.Cleanup(func() { _ = l.Close() })
	c, err := registration.NewFromConfig(aws.Config{Region: "us-west-2"}, func(o *registration.ClientOptions) {
		o.BaseEndpoint, o.Retryer = aws.String("http://"+addr), retryer(3)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterManagedInstance(context.Background(), testInput(t)); err == nil {
		t.Fatal("no error")
	}
	if n := accepted.Load(); n < 3 {
		t.Errorf("%d connections, want 3 attempts", n)
	}
}

func TestInvalidInputIsRefusedLocally(t *testing.T) {
	s := ssmServer(t)
	in := testInput(t)
	in.ActivationID = "short"
	in.ActivationCode = "short"
	_, err := newClient(t, s, nil).RegisterManagedInstance(context.Background(), in)
	if !errors.Is(err, registration.ErrInvalidInput) || len(s.Requests()) != 0 {
		t.Fatalf("got %v after %d requests", err, len(s.Requests()))
	}
}

func TestEndpointFollowsThePartition(t *testing.T) {
	for region, want := range map[string]string{
		"eu-west-1":       "https://ssm.eu-west-1.amazonaws.com/",
		"us-gov-west-1":   "https://ssm.us-gov-west-1.amazonaws.com/",
		"cn-north-1":      "https://ssm.cn-north-1.amazonaws.com.cn/",
		"us-iso-east-1":   "https://ssm.us-iso-east-1.c2s.ic.gov/",
		"us-isob-east-1":  "https://ssm.us-isob-east-1.sc2s.sgov.gov/",
		"us-isof-south-1": "https://ssm.us-isof-south-1.csp.hci.ic.gov/",
		"eu-isoe-west-1":  "https://ssm.eu-isoe-west-1.cloud.adc-e.uk/",
		"eusc-de-east-1":  "https://ssm.eusc-de-east-1.amazonaws.eu/",
	} {
		c, err := registration.NewFromConfig(aws.Config{Region: region})
		if err != nil || c.Endpoint() != want {
			t.Errorf("%s: endpoint %q, %v; want %q", region, c.Endpoint(), err, want)
		}
	}
	if _, err := registration.NewFromConfig(aws.Config{}); err == nil {
		t.Error("no region and no endpoint accepted")
	}
	// An SDK FIPS pseudo-region names no SSM endpoint ("ssm.fips-us-east-1.amazonaws.com" does not
	// exist): it is refused with iamarn's typed error, like every other region that is not one.
	for _, region := range []string{"fips-us-east-1", "us-east-1-fips", "Europe"} {
		var re *iamarn.RegionError
		if _, err := registration.NewFromConfig(aws.Config{Region: region}); !errors.As(err, &re) || !errors.Is(err, iamarn.ErrInvalidRegion) {
			t.Errorf("region %q: %v, want an *iamarn.RegionError", region, err)
		}
	}
	c, err := registration.NewFromConfig(aws.Config{Region: "eu-west-1"}, func(o *registration.ClientOptions) {
		o.BaseEndpoint = aws.String("https://vpce-123.ssm.eu-west-1.vpce.amazonaws.com")
	})
	if err != nil || c.Endpoint() != "https://vpce-123.ssm.eu-west-1.vpce.amazonaws.com/" {
		t.Errorf("override: %q, %v", c.Endpoint(), err)
	}
	if _, err := registration.NewFromConfig(aws.Config{BaseEndpoint: aws.String("ftp://x")}); err == nil {
		t.Error("ftp endpoint accepted")
	}
}

func BenchmarkRegisterManagedInstance(b *testing.B) {
	s := awstest.New(b, awstest.Options{Service: "ssm", Protocol: awstest.JSON, Anonymous: true})
	s.HandleTarget("AmazonSSM.RegisterManagedInstance", func(w http.ResponseWriter, r *http.Request) {
		awstest.WriteJSON(w, "", map[string]string{"InstanceId": "mi-1"})
	})
	c, _ := registration.NewFromConfig(aws.Config{Region: "us-west-2", BaseEndpoint: aws.String(s.URL), HTTPClient: s.Client()})
	key, _ := registration.GenerateKey(time.Now())
	in := registration.RegisterInput{ActivationID: testActivationID, ActivationCode: testActivationCode, Fingerprint: "f", PublicKey: key.PublicKey}
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.RegisterManagedInstance(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// EKS Connector activations register instances with ids "eks_c:<cluster>_<suffix>" (the SSM
// InstanceId pattern allows mi-... and eks_c:...); they must be accepted, not retried as garbage.
func TestEKSConnectorInstanceIDIsAccepted(t *testing.T) {
	s := ssmServer(t)
	var calls atomic.Int32
	const id = "eks_c:my-cluster_0123456789abcdefA"
	s.HandleTarget("AmazonSSM.RegisterManagedInstance", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		awstest.WriteJSON(w, "", map[string]string{"InstanceId": id})
	})
	got, err := newClient(t, s, nil).RegisterManagedInstance(context.Background(), testInput(t))
	if err != nil || got != id || calls.Load() != 1 {
		t.Fatalf("id %q err %v after %d calls, want %q after 1", got, err, calls.Load(), id)
	}
}

// A 2xx answer means SSM registered the material: another attempt would burn a registration of
// the activation, so an answer that cannot be understood is final.
func TestUnintelligibleSuccessIsNotRetried(t *testing.T) {
	s := ssmServer(t)
	var calls atomic.Int32
	s.HandleTarget("AmazonSSM.RegisterManagedInstance", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		awstest.WriteJSON(w, "", map[string]string{"InstanceId": ""})
	})
	_, err := newClient(t, s, nil).RegisterManagedInstance(context.Background(), testInput(t))
	if err == nil || calls.Load() != 1 {
		t.Fatalf("err %v after %d calls, want an error after exactly 1", err, calls.Load())
	}
}

// AWS validation messages quote the offending value; the activation code must not reach the error
// (and so the logs).
func TestErrorsNeverCarryTheActivationCode(t *testing.T) {
	s := ssmServer(t)
	s.HandleTarget("AmazonSSM.RegisterManagedInstance", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]string
		_ = json.NewDecoder(r.Body).Decode(&in)
		awstest.WriteJSONError(w, 400, "ValidationException", "1 validation error detected: Value '"+in["ActivationCode"]+"' at 'activationCode' failed to satisfy constraint")
	})
	_, err := newClient(t, s, nil).RegisterManagedInstance(context.Background(), testInput(t))
	if err == nil {
		t.Fatal("no error")
	}
	var ae *registration.APIError
	if !errors.As(err, &ae) || ae.Code != "ValidationException" {
		t.Fatalf("got %v, want the ValidationException", err)
	}
	if strings.Contains(err.Error(), testActivationCode) || strings.Contains(ae.ErrorMessage(), testActivationCode) {
		t.Fatalf("error carries the activation code: %v", err)
	}
}

// NewFromConfig takes the region, HTTP client, endpoint and retryer from the aws.Config, as the
// SDK's service clients do, and the option functions run after it.
func TestNewFromConfigTakesTheAWSConfig(t *testing.T) {
	s := ssmServer(t)
	var calls atomic.Int32
	s.HandleTarget("AmazonSSM.RegisterManagedInstance", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	cfg := aws.Config{Region: "us-west-2", BaseEndpoint: aws.String(s.URL), HTTPClient: s.Client(),
		Retryer: func() aws.Retryer { return retryer(2) }}
	c, err := registration.NewFromConfig(cfg)
	if err != nil || c.Endpoint() != s.URL+"/" {
		t.Fatalf("endpoint %q, %v", c.Endpoint(), err)
	}
	if _, err := c.RegisterManagedInstance(context.Background(), testInput(t)); err == nil || calls.Load() != 2 {
		t.Fatalf("%v after %d calls, want the config's retryer's 2 attempts", err, calls.Load())
	}
	calls.Store(0)
	c, err = registration.NewFromConfig(cfg, func(o *registration.ClientOptions) { o.Retryer = retryer(4) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterManagedInstance(context.Background(), testInput(t)); err == nil || calls.Load() != 4 {
		t.Fatalf("%v after %d calls, want the option's 4 attempts", err, calls.Load())
	}
}
