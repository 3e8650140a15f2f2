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
