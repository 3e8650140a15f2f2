package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// unreachableClient is a client whose API server does not exist: the tests using it must not
// reach it (malformed reviews and requests that are not pod CREATEs never look anything up).
func unreachableClient(t *testing.T) kubernetes.Interface {
	c, err := kubernetes.NewForConfig(&rest.Config{Host: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func post(t *testing.T, h http.Handler, method, contentType, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, MutatePath, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestHandlerRefusesMalformedReviews(t *testing.T) {
	h, err := NewHandler(unreachableClient(t), Config{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, method, contentType, body string
		wantCode                        int
		wantMsg                         string
	}{
		{"not JSON", "POST", "application/json", `{"request":`, 400, "not an AdmissionReview"},
		{"wrong apiVersion", "POST", "application/json", `{"apiVersion":"v1","kind":"Pod"}`, 400, `want admission.k8s.io/v1 (or v1beta1) AdmissionReview`},
		{"no request", "POST", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, 400, "has no request"},
		{"no uid", "POST", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{"version":"v1","kind":"Pod"},"operation":"CREATE"}}`, 400, "has no uid"},
		{"object that is not a pod", "POST", "application/json",
			`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","object":{"spec":"nope"}}}`, 400, "not a Pod"},
		// upstream handler_test.go TestModifierHandler "BadContentType"
		{"another content type", "POST", "application/xml", `{}`, 415, "want application/json"},
		{"GET", "GET", "", "", 405, "must be POSTed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, h, tc.method, tc.contentType, tc.body)
			if code != tc.wantCode || !strings.Contains(body, tc.wantMsg) {
				t.Errorf("got %d %q, want %d containing %q", code, body, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

func TestHandlerAllowsWhatIsNotAPodCreate(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, err := NewHandler(unreachableClient(t), Config{}, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for _, version := range []string{"admission.k8s.io/v1", "admission.k8s.io/v1beta1"} {
		for _, req := range []string{
			`{"uid":"u1","kind":{"version":"v1","kind":"Pod"},"operation":"UPDATE","object":{}}`,
			`{"uid":"u1","kind":{"version":"v1","kind":"Pod"},"subResource":"ephemeralcontainers","operation":"CREATE","object":{}}`,
			`{"uid":"u1","kind":{"version":"v1","kind":"ConfigMap"},"operation":"CREATE","object":{}}`,
		} {
			code, body := post(t, h, "POST", "application/json; charset=utf-8", `{"apiVersion":"`+version+`","kind":"AdmissionReview","request":`+req+`}`)
			var got admissionv1.AdmissionReview
			if code != 200 || json.Unmarshal([]byte(body), &got) != nil {
				t.Fatalf("%s: got %d %s", req, code, body)
			}
			// upstream handler_test.go "ValidRequestV1TypeMetaEchoed": the apiVersion comes back.
			if got.APIVersion != version || got.Kind != "AdmissionReview" || got.Response == nil ||
				got.Response.UID != "u1" || !got.Response.Allowed || got.Response.Patch != nil {
				t.Errorf("%s %s: got %s", version, req, body)
			}
		}
	}
}

// The metrics convention of every package (README "Metrics"): Handlers on one Registerer share
// the collectors; a nil Registerer registers nothing.
func TestHandlersShareTheCollectorsOfARegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := NewHandler(unreachableClient(t), Config{}, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	second, err := NewHandler(unreachableClient(t), Config{}, Options{Registerer: reg})
	if err != nil {
		t.Fatalf("second Handler on one registry: %v", err)
	}
	if first.metrics.mutations != second.metrics.mutations || first.metrics.podCount != second.metrics.podCount {
		t.Error("the second Handler's collectors are not the first one's: their counts would not add up")
	}
	if _, err := NewHandler(unreachableClient(t), Config{}, Options{}); err != nil {
		t.Fatalf("nil Registerer: %v", err)
	}
}

// A missing or unreadable identities file stops Start (the binary exits) rather than serving
// pods as if nobody used container credentials.
func TestStartRefusesABadIdentitiesFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"identities":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{filepath.Join(dir, "missing.json"), bad} {
		h, err := NewHandler(unreachableClient(t), Config{}, Options{IdentitiesFile: file})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		err = h.Start(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("Start with %s: %v, want an error naming the file", file, err)
		}
		if h.Ready() == nil {
			t.Errorf("ready with %s", file)
		}
	}
}
