package oidc

import (
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestProviderARNAndTrustPolicy(t *testing.T) {
	arn, err := ProviderARN("", "123456789012", testIssuer)
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:iam::123456789012:oidc-provider/s3.eu-west-1.amazonaws.com/example-issuer"; arn != want {
		t.Fatalf("arn %s, want %s", arn, want)
	}
	if _, err := ProviderARN("aws-cn", "12345", testIssuer); err == nil {
		t.Fatal("short account id accepted")
	}
	if _, err := ProviderARN("aws-moon", "123456789012", testIssuer); err == nil {
		t.Fatal("unknown partition accepted")
	}
	pol, err := TrustPolicy(TrustPolicyOptions{ProviderARN: arn, Issuer: testIssuer, Namespace: "apps", ServiceAccount: "s3-reader"})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Principal map[string]string
			Action    string
			Condition map[string]map[string]string
		}
	}
	if err := json.Unmarshal(pol, &doc); err != nil {
		t.Fatal(err)
	}
	st := doc.Statement[0]
	eq := st.Condition["StringEquals"]
	hp := "s3.eu-west-1.amazonaws.com/example-issuer"
	if st.Principal["Federated"] != arn || st.Action != "sts:AssumeRoleWithWebIdentity" ||
		eq[hp+":sub"] != "system:serviceaccount:apps:s3-reader" || eq[hp+":aud"] != "sts.amazonaws.com" {
		t.Fatalf("policy %s", pol)
	}
	pol, err = TrustPolicy(TrustPolicyOptions{ProviderARN: arn, Issuer: testIssuer, Namespace: "apps", ServiceAccount: "*"})
	if err != nil || !strings.Contains(string(pol), `"StringLike"`) {
		t.Fatalf("wildcard: %v %s", err, pol)
	}
}

func TestTrustPolicyRefusesWhatWouldWidenIt(t *testing.T) {
	arn, err := ProviderARN("", "123456789012", testIssuer)
	if err != nil {
		t.Fatal(err)
	}
	ok := TrustPolicyOptions{ProviderARN: arn, Issuer: testIssuer, Namespace: "apps", ServiceAccount: "reader"}
	for name, mutate := range map[string]func(*TrustPolicyOptions){
		"wildcard namespace":        func(o *TrustPolicyOptions) { o.Namespace = "*" },
		"namespace with a wildcard": func(o *TrustPolicyOptions) { o.Namespace = "team-*" },
		"policy variable":           func(o *TrustPolicyOptions) { o.ServiceAccount = "${aws:username}" },
		"colon in the name":         func(o *TrustPolicyOptions) { o.ServiceAccount = "a:b" },
		"upper case":                func(o *TrustPolicyOptions) { o.Namespace = "Apps" },
		"variable audience":         func(o *TrustPolicyOptions) { o.Audience = "${aws:userid}" },
		"provider of another issuer": func(o *TrustPolicyOptions) {
			o.ProviderARN = "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/other"
		},
	} {
		o := ok
		mutate(&o)
		if pol, err := TrustPolicy(o); err == nil {
			t.Errorf("%s: accepted:\n%s", name, pol)
		}
	}
	if _, err := TrustPolicy(ok); err != nil {
		t.Fatal(err)
	}
}

func TestHandler(t *testing.T) {
	k1 := must(NewKey(mustEC(t, elliptic.P256())))
	k2 := must(NewKey(mustRSA(t, 2048)))
	h, err := NewHandler(testIssuer, []Key{k1}, DocumentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, inm string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	disc, jwks := h.Documents()
	rec := do(http.MethodGet, "/example-issuer/.well-known/openid-configuration", "")
	if rec.Code != 200 || rec.Body.String() != string(disc) || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "public, max-age=3600" {
		t.Fatalf("discovery: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	rec = do(http.MethodGet, "/example-issuer/openid/v1/jwks", "")
	etag := rec.Header().Get("ETag")
	if rec.Code != 200 || rec.Body.String() != string(jwks) || rec.Header().Get("Content-Type") != "application/jwk-set+json" || etag == "" {
		t.Fatalf("jwks: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	tests := []struct {
		name, method, path, inm string
		code                    int
		emptyBody               bool
	}{
		{"HEAD has headers and no body", http.MethodHead, "/example-issuer/openid/v1/jwks", "", 200, true},
		{"matching ETag is not modified", http.MethodGet, "/example-issuer/openid/v1/jwks", etag, 304, true},
		{"stale ETag gets the document", http.MethodGet, "/example-issuer/openid/v1/jwks", `"stale"`, 200, false},
		{"POST is not allowed", http.MethodPost, "/example-issuer/openid/v1/jwks", "", 405, false},
		{"other paths are not found", http.MethodGet, "/openid/v1/jwks", "", 404, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(tt.method, tt.path, tt.inm)
			if rec.Code != tt.code || (rec.Body.Len() == 0) != tt.emptyBody {
				t.Fatalf("%d %q", rec.Code, rec.Body)
			}
		})
	}

	// Rotation: readers never see a discovery and JWKS from different key sets.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, j := h.Documents()
				if strings.Contains(string(d), "RS256") != strings.Contains(string(j), `"RSA"`) {
					t.Error("torn documents")
					return
				}
			}
		}()
	}
	for i := range 50 {
		keys := []Key{k1}
		if i%2 == 0 {
			keys = append(keys, k2)
		}
		if err := h.SetKeys(keys); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if err := h.SetKeys(nil); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("empty key set: %v", err)
	}
	if rec := do(http.MethodGet, "/example-issuer/openid/v1/jwks", ""); rec.Code != 200 || rec.Body.Len() == 0 {
		t.Fatal("failed SetKeys cleared the documents")
	}
}

func TestRotation(t *testing.T) {
	oldK := must(NewKey(mustEC(t, elliptic.P256())))
	newK := must(NewKey(mustEC(t, elliptic.P256())))
	r := Rotation{Active: []Key{oldK}}
	if _, err := r.Retire(oldK.ID, testNow); err == nil {
		t.Fatal("retired the only active key")
	}
	r.Active = append(r.Active, newK)
	r, err := r.Retire(oldK.ID, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Active) != 1 || len(r.Retiring) != 1 || len(r.Keys()) != 2 {
		t.Fatalf("after retire: %+v", r)
	}
	p := RotationPolicy{MaxTokenTTL: 24 * time.Hour, CacheMargin: time.Hour}
	at := r.Retiring[0].RemovableAt(p)
	if want := testNow.Add(25 * time.Hour); !at.Equal(want) {
		t.Fatalf("removable at %s, want %s", at, want)
	}
	if kept, removed := r.Prune(at.Add(-time.Second), p); len(removed) != 0 || len(kept.Retiring) != 1 {
		t.Fatal("pruned too early")
	}
	if kept, removed := r.Prune(at, p); len(removed) != 1 || len(kept.Keys()) != 1 {
		t.Fatal("not pruned when due")
	}
}

func BenchmarkHandler(b *testing.B) {
	h := must(NewHandler(testIssuer, []Key{must(NewKey(mustEC(b, elliptic.P256())))}, DocumentOptions{}))
	req := httptest.NewRequest(http.MethodGet, "/example-issuer/openid/v1/jwks", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
	}
}
