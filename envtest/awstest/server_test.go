package awstest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithy "github.com/aws/smithy-go"
)

func stsServer(t *testing.T) *Server {
	s := New(t, Options{Service: "sts", Protocol: Query})
	s.HandleAction("GetCallerIdentity", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		_, _ = io.WriteString(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
			`<Arn>arn:aws:iam::123456789012:user/alice</Arn><UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account>`+
			`</GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`)
	})
	return s
}

func TestAcceptsRequestsSignedByTheSDK(t *testing.T) {
	s := stsServer(t)
	out, err := sts.NewFromConfig(s.Config()).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if aws.ToString(out.Arn) != "arn:aws:iam::123456789012:user/alice" {
		t.Fatalf("arn = %q", aws.ToString(out.Arn))
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].AccessKeyID != AccessKeyID {
		t.Fatalf("requests = %+v", reqs)
	}
}

func TestRejectsWrongSignatures(t *testing.T) {
	s := stsServer(t)
	tests := []struct {
		name string
		cfg  func(aws.Config) aws.Config
		code string
	}{
		{"wrong secret", func(c aws.Config) aws.Config {
			c.Credentials = credentials.NewStaticCredentialsProvider(AccessKeyID, "not-the-secret", SessionToken)
			return c
		}, "SignatureDoesNotMatch"},
		{"unknown key", func(c aws.Config) aws.Config {
			c.Credentials = credentials.NewStaticCredentialsProvider("AKIDUNKNOWN", SecretAccessKey, SessionToken)
			return c
		}, "InvalidClientTokenId"},
		{"wrong region in scope", func(c aws.Config) aws.Config { c.Region = "eu-west-1"; return c }, "SignatureDoesNotMatch"},
		{"missing session token", func(c aws.Config) aws.Config {
			c.Credentials = credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, "")
			return c
		}, "InvalidClientTokenId"},
		{"anonymous", func(c aws.Config) aws.Config { c.Credentials = aws.AnonymousCredentials{}; return c }, "MissingAuthenticationToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg(s.Config())
			cfg.RetryMaxAttempts = 1
			_, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.code {
				t.Fatalf("err = %v, want API error %s", err, tt.code)
			}
		})
	}
}

func TestRejectsTamperedBody(t *testing.T) {
	s := New(t, Options{Service: "eks-auth", Protocol: RESTJSON})
	s.Handle("POST /clusters/{name}/assume-role-for-pod-identity", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, "", map[string]string{"ok": "yes"})
	})
	sign := func(body, sent string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/clusters/c1/assume-role-for-pod-identity", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		sum := sha256Hex(body)
		req.Header.Set("X-Amz-Security-Token", SessionToken)
		err := v4.NewSigner().SignHTTP(context.Background(), s.Credentials(), req, sum, "eks-auth", s.Region(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req.Body = io.NopCloser(strings.NewReader(sent))
		req.ContentLength = int64(len(sent))
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := sign(`{"token":"a"}`, `{"token":"a"}`); resp.StatusCode != 200 {
		t.Fatalf("intact body: %d", resp.StatusCode)
	}
	if resp := sign(`{"token":"a"}`, `{"token":"b"}`); resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "SignatureDoesNotMatch" {
		t.Fatalf("tampered body: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestVerifiesPresignedURLs(t *testing.T) {
	s := stsServer(t)
	presigner := sts.NewPresignClient(sts.NewFromConfig(s.Config()))
	req, err := presigner.PresignGetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	get := func(url string) int {
		r, _ := http.NewRequest(req.Method, url, nil)
		for k, v := range req.SignedHeader {
			if k != "Host" {
				r.Header[k] = v
			}
		}
		resp, err := s.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(req.URL); code != 200 {
		t.Fatalf("presigned GET: %d", code)
	}
	if code := get(strings.Replace(req.URL, "Version=2011-06-15", "Version=2011-06-16", 1)); code != 403 {
		t.Fatalf("tampered presigned GET: %d, want 403", code)
	}
}

// A presigned request is never valid forever: without X-Amz-Expires (the SDK's STS presigner sends
// none) it expires after STS's 15 minutes, and a malformed or oversized X-Amz-Expires is refused.
func TestPresignedURLsExpire(t *testing.T) {
	signedAt := time.Now()
	creds := aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey, SessionToken: SessionToken}
	presign := func(t *testing.T, expires string) *http.Request {
		t.Helper()
		u := "https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"
		if expires != "" {
			u += "&X-Amz-Expires=" + expires
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, emptyPayloadHash, "sts", DefaultRegion, signedAt)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := http.NewRequest(http.MethodGet, signed, nil)
		return out
	}
	cases := []struct {
		name, expires string
		after         time.Duration
		wantCode      string
	}{
		{"no X-Amz-Expires, 14 minutes later", "", 14 * time.Minute, ""},
		{"no X-Amz-Expires, 16 minutes later", "", 16 * time.Minute, "ExpiredToken"},
		{"X-Amz-Expires=60, 30 seconds later", "60", 30 * time.Second, ""},
		{"X-Amz-Expires=60, 2 minutes later", "60", 2 * time.Minute, "ExpiredToken"},
		{"X-Amz-Expires above seven days", "604801", 0, "IncompleteSignature"},
		{"X-Amz-Expires negative", "-1", 0, "IncompleteSignature"},
		{"X-Amz-Expires not an integer", "1h", 0, "IncompleteSignature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{Service: "sts", Region: DefaultRegion, Credentials: map[string]aws.Credentials{AccessKeyID: creds},
				Now: func() time.Time { return signedAt.Add(tc.after) }}
			_, err := v.Verify(presign(t, tc.expires), nil)
			code := ""
			if se, ok := err.(*SignatureError); ok {
				code = se.Code
			} else if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if code != tc.wantCode {
				t.Fatalf("Verify = %v, want code %q", err, tc.wantCode)
			}
		})
	}
}

// A non-S3 request signed over "UNSIGNED-PAYLOAD" does not cover its body: the emulator must not
// accept it (with any body), as EKS Auth, STS and EKS hash what they receive.
func TestUnsignedPayloadOnlyForS3(t *testing.T) {
	for _, tc := range []struct {
		service string
		want    int
	}{{"eks-auth", http.StatusForbidden}, {"s3", http.StatusOK}} {
		t.Run(tc.service, func(t *testing.T) {
			s := New(t, Options{Service: tc.service, Protocol: RESTJSON})
			s.Handle("POST /clusters/{name}/assume-role-for-pod-identity", func(w http.ResponseWriter, r *http.Request) {
				WriteJSON(w, "", map[string]string{"ok": "yes"})
			})
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/clusters/c1/assume-role-for-pod-identity", strings.NewReader(`{"token":"tampered"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
			req.Header.Set("X-Amz-Security-Token", SessionToken)
			if err := v4.NewSigner().SignHTTP(context.Background(), s.Credentials(), req, "UNSIGNED-PAYLOAD", tc.service, s.Region(), time.Now()); err != nil {
				t.Fatal(err)
			}
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%s with UNSIGNED-PAYLOAD: %d, want %d", tc.service, resp.StatusCode, tc.want)
			}
		})
	}
}
