package oidc

import (
	"crypto"
	"crypto/elliptic"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const testIssuer = "https://s3.eu-west-1.amazonaws.com/example-issuer"

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type tokenSpec struct {
	alg      jose.SignatureAlgorithm
	kid      string
	noKid    bool
	iss, sub string
	aud      []string
	exp, nbf time.Time
}

func mint(t testing.TB, signer crypto.Signer, s tokenSpec) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if !s.noKid {
		opts = opts.WithHeader("kid", s.kid)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: signer}, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := jwt.Claims{Issuer: s.iss, Subject: s.sub, Audience: s.aud, Expiry: jwt.NewNumericDate(s.exp),
		IssuedAt: jwt.NewNumericDate(s.nbf), NotBefore: jwt.NewNumericDate(s.nbf)}
	tok, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerify(t *testing.T) {
	rsaKey, ecKey := mustRSA(t, 2048), mustEC(t, elliptic.P256())
	keys := []Key{must(NewKey(rsaKey)), must(NewKey(ecKey))}
	_, jwksJSON, err := Documents(testIssuer, keys, DocumentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := must(NewKey(mustRSA(t, 2048)))
	good := tokenSpec{alg: jose.RS256, kid: keys[0].ID, iss: testIssuer, sub: "system:serviceaccount:apps:s3-reader",
		aud: []string{"sts.amazonaws.com"}, exp: testNow.Add(time.Hour), nbf: testNow.Add(-time.Minute)}
	with := func(f func(*tokenSpec)) tokenSpec { s := good; f(&s); return s }
	tamper := func(tok string) string {
		p := strings.Split(tok, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(p[1])
		payload = []byte(strings.Replace(string(payload), "s3-reader", "s3-admin0", 1))
		p[1] = base64.RawURLEncoding.EncodeToString(payload)
		return strings.Join(p, ".")
	}
	algNone := func(tok string) string {
		p := strings.Split(tok, ".")
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"` + keys[0].ID + `"}`))
		return h + "." + p[1] + "."
	}
	tests := []struct {
		name   string
		signer crypto.Signer
		spec   tokenSpec
		mutate func(string) string
		expect Expect
		want   error
	}{
		{name: "valid RS256 token", signer: rsaKey, spec: good},
		{name: "valid ES256 token", signer: ecKey, spec: with(func(s *tokenSpec) { s.alg, s.kid = jose.ES256, keys[1].ID })},
		{name: "audience is one of several", signer: rsaKey, spec: with(func(s *tokenSpec) { s.aud = []string{"other", "sts.amazonaws.com"} })},
		{name: "expired within leeway passes", signer: rsaKey, spec: with(func(s *tokenSpec) { s.exp = testNow.Add(-30 * time.Second) })},
		{name: "tampered payload", signer: rsaKey, spec: good, mutate: tamper, want: ErrSignature},
		{name: "alg none", signer: rsaKey, spec: good, mutate: algNone, want: ErrAlgorithm},
		{name: "HS256 header", signer: rsaKey, spec: good, mutate: func(tok string) string {
			return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"x"}`)) + tok[strings.Index(tok, "."):]
		}, want: ErrAlgorithm},
		{name: "RS512 against an RS256 JWK", signer: rsaKey, spec: with(func(s *tokenSpec) { s.alg = jose.RS512 }), want: ErrAlgorithm},
		{name: "missing kid", signer: rsaKey, spec: with(func(s *tokenSpec) { s.noKid = true }), want: ErrMissingKeyID},
		{name: "wrong kid", signer: rsaKey, spec: with(func(s *tokenSpec) { s.kid = other.ID }), want: ErrUnknownKeyID},
		{name: "signed by a key not in the set under a known kid", signer: other.Private, spec: good, want: ErrSignature},
		{name: "wrong issuer", signer: rsaKey, spec: with(func(s *tokenSpec) { s.iss = "https://evil.example.com" }), want: ErrIssuer},
		{name: "issuer with trailing slash", signer: rsaKey, spec: with(func(s *tokenSpec) { s.iss = testIssuer + "/" }), want: ErrIssuer},
		{name: "wrong audience", signer: rsaKey, spec: with(func(s *tokenSpec) { s.aud = []string{"https://kubernetes.default.svc"} }), want: ErrAudience},
		{name: "expired", signer: rsaKey, spec: with(func(s *tokenSpec) { s.exp = testNow.Add(-2 * time.Minute) }), want: ErrExpired},
		{name: "not yet valid", signer: rsaKey, spec: with(func(s *tokenSpec) { s.nbf = testNow.Add(5 * time.Minute) }), want: ErrNotYetValid},
		{name: "subject that is not a service account", signer: rsaKey, spec: with(func(s *tokenSpec) { s.sub = "admin" }), want: ErrSubject},
		{name: "subject differs from expected", signer: rsaKey, spec: good, expect: Expect{Subject: "system:serviceaccount:apps:other"}, want: ErrSubject},
		{name: "not a JWS", signer: rsaKey, spec: good, mutate: func(string) string { return "abc" }, want: ErrMalformedToken},
		{name: "longer than STS accepts", signer: rsaKey, spec: with(func(s *tokenSpec) {
			s.aud = append([]string{DefaultAudience}, strings.Repeat("a", MaxTokenLength))
		}), want: ErrMalformedToken},
		{name: "long but within the STS limit", signer: rsaKey, spec: with(func(s *tokenSpec) {
			s.aud = append([]string{DefaultAudience}, strings.Repeat("a", MaxTokenLength/2))
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := mint(t, tt.signer, tt.spec)
			if tt.mutate != nil {
				tok = tt.mutate(tok)
			}
			exp := tt.expect
			exp.Issuer, exp.Now = testIssuer, func() time.Time { return testNow }
			claims, err := Verify(tok, jwksJSON, exp)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if claims.Namespace != "apps" || claims.ServiceAccount != "s3-reader" {
					t.Fatalf("claims = %+v", claims)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("err %T is not a *TokenError", err)
			}
		})
	}
}

func TestParseServiceAccountSubject(t *testing.T) {
	for sub, ok := range map[string]bool{
		"system:serviceaccount:ns:name":                           true,
		"system:serviceaccount:ns:":                               false,
		"system:serviceaccount::name":                             false,
		"system:serviceaccount:a:b:c":                             false,
		"system:node:x":                                           false,
		"system:serviceaccount:ns:my.sa-1":                        true,
		"system:serviceaccount:ns:*":                              false,
		"system:serviceaccount:*:name":                            false,
		"system:serviceaccount:ns:Name":                           false,
		"system:serviceaccount:ns:na me":                          false,
		"system:serviceaccount:ns:name ":                          false,
		"system:serviceaccount:ns:-name":                          false,
		"system:serviceaccount:" + strings.Repeat("n", 64) + ":x": false,
	} {
		if _, _, got := ParseServiceAccountSubject(sub); got != ok {
			t.Errorf("%q: ok=%v, want %v", sub, got, ok)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	rsaKey := mustRSA(b, 2048)
	k := must(NewKey(rsaKey))
	jwksJSON := must(JWKS([]Key{k}, DocumentOptions{}))
	v, err := NewVerifier(jwksJSON, Expect{Issuer: testIssuer})
	if err != nil {
		b.Fatal(err)
	}
	tok := mint(b, rsaKey, tokenSpec{alg: jose.RS256, kid: k.ID, iss: testIssuer, sub: "system:serviceaccount:a:b",
		aud: []string{DefaultAudience}, exp: time.Now().Add(time.Hour), nbf: time.Now()})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
