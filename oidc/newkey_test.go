package oidc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func TestNewKeyRejectsNilAndIncompleteKeysWithoutPanicking(t *testing.T) {
	for name, k := range map[string]any{
		"nil":                (any)(nil),
		"nil rsa public":     (*rsa.PublicKey)(nil),
		"nil rsa private":    (*rsa.PrivateKey)(nil),
		"nil ecdsa public":   (*ecdsa.PublicKey)(nil),
		"nil ecdsa private":  (*ecdsa.PrivateKey)(nil),
		"ecdsa without X, Y": &ecdsa.PublicKey{Curve: elliptic.P256()},
		"rsa without N":      &rsa.PublicKey{E: 65537},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewKey(k)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrMalformedKey) && !errors.Is(err, ErrUnsupportedKey) && !errors.Is(err, ErrWeakKey) {
				t.Fatalf("untyped error %v", err)
			}
		})
	}
}

func TestParseKeysRejectsECJWKWhosePrivatePartBelongsToAnotherKey(t *testing.T) {
	a, b := mustEC(t, elliptic.P256()), mustEC(t, elliptic.P256())
	var ja, jb map[string]any
	for k, m := range map[*ecdsa.PrivateKey]*map[string]any{a: &ja, b: &jb} {
		raw, err := json.Marshal(jose.JSONWebKey{Key: k})
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, m); err != nil {
			t.Fatal(err)
		}
	}
	ja["d"] = jb["d"]
	mixed, err := json.Marshal(ja)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := ParseKeys(mixed); !errors.Is(err, ErrMalformedKey) {
		t.Fatalf("mismatched d accepted: %d keys, err %v", len(keys), err)
	}
	// The matching private JWK still parses.
	raw, _ := json.Marshal(jose.JSONWebKey{Key: a})
	if keys, err := ParseKeys(raw); err != nil || len(keys) != 1 || keys[0].Private == nil {
		t.Fatalf("private JWK: %d keys, err %v", len(keys), err)
	}
}
