package oidc

import (
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDocumentsOptions(t *testing.T) {
	k := must(NewKey(mustEC(t, elliptic.P384())))
	r := must(NewKey(mustRSA(t, 2048)))
	tests := []struct {
		name     string
		keys     []Key
		opts     DocumentOptions
		discHas  []string
		discNot  []string
		jwksKeys int
		jwksHas  []string
	}{
		{name: "defaults mirror kube-apiserver", keys: []Key{k, r},
			discHas:  []string{`{"issuer":"` + testIssuer + `","jwks_uri":"` + testIssuer + `/openid/v1/jwks","response_types_supported":["id_token"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["ES384","RS256"]}`},
			discNot:  []string{"authorization_endpoint", "\n"},
			jwksKeys: 2, jwksHas: []string{`{"keys":[{"use":"sig","kty":"EC","kid":"` + k.ID + `","crv":"P-384","alg":"ES384","x":"`}},
		{name: "explicit jwks_uri", keys: []Key{r}, opts: DocumentOptions{JWKSURI: testIssuer + "/keys.json"},
			discHas: []string{`"jwks_uri":"` + testIssuer + `/keys.json"`}, jwksKeys: 1},
		{name: "explicit kid", keys: []Key{{ID: "my-kid", Public: r.Public}}, jwksKeys: 1, jwksHas: []string{`"kid":"my-kid","alg":"RS256"`}},
		{name: "legacy empty kid duplicates every key", keys: []Key{k, r}, opts: DocumentOptions{LegacyEmptyKID: true},
			jwksKeys: 4, jwksHas: []string{`{"use":"sig","kty":"RSA","kid":"","alg":"RS256"`}},
		{name: "webhook guide fields", keys: []Key{r}, opts: DocumentOptions{WebhookFields: true},
			discHas:  []string{`"authorization_endpoint":"urn:kubernetes:programmatic_authorization"`, `"claims_supported":["sub","iss"]`},
			jwksKeys: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			disc, jwks, err := Documents(testIssuer, tt.keys, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.discHas {
				if !strings.Contains(string(disc), s) {
					t.Errorf("discovery %s\nlacks %s", disc, s)
				}
			}
			for _, s := range tt.discNot {
				if strings.Contains(string(disc), s) {
					t.Errorf("discovery %s\nhas %q", disc, s)
				}
			}
			for _, s := range tt.jwksHas {
				if !strings.Contains(string(jwks), s) {
					t.Errorf("jwks %s\nlacks %s", jwks, s)
				}
			}
			var set struct{ Keys []map[string]any }
			if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) != tt.jwksKeys {
				t.Fatalf("jwks %s: %v, want %d keys", jwks, err, tt.jwksKeys)
			}
			for _, key := range set.Keys {
				if _, ok := key["d"]; ok {
					t.Fatal("private key material published")
				}
			}
		})
	}
}

func TestDocumentsRejects(t *testing.T) {
	r := must(NewKey(mustRSA(t, 2048)))
	if _, _, err := Documents("http://insecure.example.com", []Key{r}, DocumentOptions{}); !errors.Is(err, ErrInvalidIssuer) {
		t.Errorf("http issuer: %v", err)
	}
	if _, _, err := Documents(testIssuer, nil, DocumentOptions{}); !errors.Is(err, ErrNoKeys) {
		t.Errorf("no keys: %v", err)
	}
	if _, _, err := Documents(testIssuer, []Key{r}, DocumentOptions{JWKSURI: "http://x/keys"}); !errors.Is(err, ErrInvalidDocumentOptions) {
		t.Errorf("http jwks_uri: %v", err)
	}
}

func TestDocumentsAlgorithmOfHandBuiltKeys(t *testing.T) {
	ec := mustEC(t, elliptic.P256())
	rsaKey := mustRSA(t, 2048)
	disc, set, err := Documents(testIssuer, []Key{{Public: &ec.PublicKey}, {Public: &rsaKey.PublicKey, Algorithm: "RS512"}}, DocumentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(disc), `"id_token_signing_alg_values_supported":["ES256","RS512"]}`) {
		t.Errorf("discovery algorithms: %s", disc)
	}
	if !strings.Contains(string(set), `"crv":"P-256","alg":"ES256"`) || !strings.Contains(string(set), `"alg":"RS512"`) {
		t.Errorf("jwks: %s", set)
	}
	for _, k := range []Key{{Public: &ec.PublicKey, Algorithm: "RS256"}, {Public: &ec.PublicKey, Algorithm: "ES384"}, {Public: &rsaKey.PublicKey, Algorithm: "ES256"}, {Public: &rsaKey.PublicKey, Algorithm: "none"}} {
		if _, _, err := Documents(testIssuer, []Key{k}, DocumentOptions{}); !errors.Is(err, ErrInvalidDocumentOptions) {
			t.Errorf("alg %s on %T: %v", k.Algorithm, k.Public, err)
		}
	}
}

func TestValidateIssuer(t *testing.T) {
	tests := []struct {
		issuer   string
		wantErr  bool
		warnings int
	}{
		{"https://s3.eu-west-1.amazonaws.com/my-bucket", false, 0},
		{"https://oidc.example.com", false, 0},
		{"https://my-bucket.s3.eu-west-1.amazonaws.com", false, 0},
		{"https://oidc.example.com/", false, 1},
		{"https://s3-us-west-2.amazonaws.com/aws-irsa-oidc-1", false, 1},
		{"https://s3-us-west-2.amazonaws.com/aws-irsa-oidc-1/", false, 2},
		{"http://oidc.example.com", true, 0},
		{"https://oidc.example.com:8443", true, 0},
		{"https://oidc.example.com:/cluster", true, 0},
		{"HTTPS://oidc.example.com", true, 0},
		{"https://oidc.example.com/a b", true, 0},
		{"https://oidc.example.com?x=1", true, 0},
		{"https://oidc.example.com#frag", true, 0},
		{"https://user@oidc.example.com", true, 0},
		{"https://my.dotted.bucket.s3.eu-west-1.amazonaws.com", true, 0},
		{"https://my.dotted.bucket.s3.amazonaws.com", true, 0},
		{"", true, 0},
		{"oidc.example.com", true, 0},
		{"https://oidc.example.com/" + strings.Repeat("a", 250), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.issuer, func(t *testing.T) {
			w, err := ValidateIssuer(tt.issuer)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidIssuer) {
				t.Fatalf("err %v does not wrap ErrInvalidIssuer", err)
			}
			if len(w) != tt.warnings {
				t.Fatalf("warnings = %q, want %d", w, tt.warnings)
			}
		})
	}
}

func BenchmarkDocuments(b *testing.B) {
	keys := []Key{must(NewKey(mustRSA(b, 2048))), must(NewKey(mustEC(b, elliptic.P256())))}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Documents(testIssuer, keys, DocumentOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
