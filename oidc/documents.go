package oidc

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// Well-known paths and values shared with kube-apiserver.
const (
	// DiscoveryPath is where discovery lives below the issuer.
	DiscoveryPath = "/.well-known/openid-configuration"
	// KubeJWKSPath is where kube-apiserver serves the JWKS; Documents defaults jwks_uri to the
	// issuer plus this path.
	KubeJWKSPath = "/openid/v1/jwks"
	// ContentTypeDiscovery is the content type of the discovery document.
	ContentTypeDiscovery = "application/json"
	// ContentTypeJWKS is the content type of the JWKS (RFC 7517 section 8.5.1).
	ContentTypeJWKS = "application/jwk-set+json"
	// CacheControl is what kube-apiserver sends with both documents.
	CacheControl = "public, max-age=3600"
	// WebhookAuthorizationEndpoint is the authorization_endpoint value of the
	// amazon-eks-pod-identity-webhook self-hosting guide.
	WebhookAuthorizationEndpoint = "urn:kubernetes:programmatic_authorization"
)

// ErrInvalidDocumentOptions is returned for options Documents cannot honour.
var ErrInvalidDocumentOptions = errors.New("oidc: invalid document options")

// DocumentOptions tune Documents. The zero value produces exactly what kube-apiserver serves.
type DocumentOptions struct {
	// JWKSURI is the jwks_uri (default: issuer + KubeJWKSPath). It must be https.
	JWKSURI string
	// LegacyEmptyKID appends, for every key, a copy with "kid":"". Only clusters older than
	// Kubernetes 1.16 issued tokens without a kid; the old self-hosted IRSA walkthrough added these
	// copies. Off by default and not what kube-apiserver serves.
	LegacyEmptyKID bool
	// WebhookFields adds the authorization_endpoint and claims_supported fields of the
	// pod-identity-webhook self-hosting guide (harmless, but not what kube-apiserver serves).
	WebhookFields bool
	// SkipIssuerValidation builds documents for an issuer ValidateIssuer rejects (tests, private
	// networks). Warnings are never fatal either way.
	SkipIssuerValidation bool
}

// jwk has kube-apiserver's (go-jose's) field order: use, kty, kid, crv, alg, x, y, n, e.
type jwk struct {
	Use string  `json:"use"`
	Kty string  `json:"kty"`
	Kid *string `json:"kid,omitempty"`
	Crv string  `json:"crv,omitempty"`
	Alg string  `json:"alg"`
	X   string  `json:"x,omitempty"`
	Y   string  `json:"y,omitempty"`
	N   string  `json:"n,omitempty"`
	E   string  `json:"e,omitempty"`
}

type jwks struct {
	Keys []jwk `json:"keys"`
}

type discovery struct {
	Issuer        string   `json:"issuer"`
	AuthzEndpoint string   `json:"authorization_endpoint,omitempty"`
	JWKSURI       string   `json:"jwks_uri"`
	ResponseTypes []string `json:"response_types_supported"`
	SubjectTypes  []string `json:"subject_types_supported"`
	SigningAlgs   []string `json:"id_token_signing_alg_values_supported"`
	Claims        []string `json:"claims_supported,omitempty"`
}

// Documents returns the discovery document and the JWKS for issuer and keys, byte for byte what
// kube-apiserver serves at DiscoveryPath and KubeJWKSPath for the same --service-account-issuer,
// --service-account-jwks-uri and key files (compact JSON, no trailing newline, keys in the given
// order, algorithms sorted). Only public key material is ever written.
func Documents(issuer string, keys []Key, o DocumentOptions) (discoveryJSON, jwksJSON []byte, err error) {
	if !o.SkipIssuerValidation {
		if _, err := ValidateIssuer(issuer); err != nil {
			return nil, nil, err
		}
	}
	jwksURI := o.JWKSURI
	if jwksURI == "" {
		jwksURI = strings.TrimSuffix(issuer, "/") + KubeJWKSPath
	}
	if !strings.HasPrefix(jwksURI, "https://") {
		return nil, nil, fmt.Errorf("%w: jwks_uri %q must be an https URL", ErrInvalidDocumentOptions, jwksURI)
	}
	set, err := JWKS(keys, o)
	if err != nil {
		return nil, nil, err
	}
	algs := map[string]bool{}
	for _, k := range keys {
		alg, err := keyAlgorithm(k)
		if err != nil {
			return nil, nil, err // unreachable: JWKS checked every key
		}
		algs[alg] = true
	}
	sorted := make([]string, 0, len(algs))
	for a := range algs {
		sorted = append(sorted, a)
	}
	slices.Sort(sorted)
	d := discovery{
		Issuer:        issuer,
		JWKSURI:       jwksURI,
		ResponseTypes: []string{"id_token"},
		SubjectTypes:  []string{"public"},
		SigningAlgs:   sorted,
	}
	if o.WebhookFields {
		d.AuthzEndpoint = WebhookAuthorizationEndpoint
		d.Claims = []string{"sub", "iss"}
	}
	disc, err := json.Marshal(d)
	if err != nil {
		return nil, nil, err
	}
	return disc, set, nil
}

// JWKS returns only the key set document (see Documents); only LegacyEmptyKID of opts applies.
func JWKS(keys []Key, o DocumentOptions) ([]byte, error) {
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	set := jwks{Keys: make([]jwk, 0, len(keys))}
	for i, k := range keys {
		j, err := toJWK(k)
		if err != nil {
			return nil, fmt.Errorf("oidc: key %d: %w", i+1, err)
		}
		set.Keys = append(set.Keys, j)
	}
	if o.LegacyEmptyKID {
		empty := ""
		for _, j := range set.Keys[:len(keys)] {
			j.Kid = &empty
			set.Keys = append(set.Keys, j)
		}
	}
	return json.Marshal(set)
}

func toJWK(k Key) (jwk, error) {
	kid := k.ID
	if kid == "" {
		var err error
		if kid, err = KeyID(k.Public); err != nil {
			return jwk{}, err
		}
	}
	alg, err := keyAlgorithm(k)
	if err != nil {
		return jwk{}, err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	j := jwk{Use: "sig", Kid: &kid, Alg: alg}
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		j.Kty = "RSA"
		j.N = b64(pub.N.Bytes())
		j.E = b64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		point, err := pub.Bytes() // 0x04 || X || Y, each coordinate padded to the curve size
		if err != nil {
			return jwk{}, fmt.Errorf("%w: %v", ErrMalformedKey, err)
		}
		size := (len(point) - 1) / 2
		j.Kty = "EC"
		j.Crv = pub.Curve.Params().Name
		j.X = b64(point[1 : 1+size])
		j.Y = b64(point[1+size:])
	}
	return j, nil
}

// keyAlgorithm checks k.Public and returns the algorithm to publish for it: k.Algorithm when it
// fits the key (RS256/384/512 for RSA, the curve's ES algorithm for ECDSA), else the key's
// default when k.Algorithm is empty. A JWK whose alg does not fit its key verifies nothing.
func keyAlgorithm(k Key) (string, error) {
	checked, err := NewKey(k.Public)
	if err != nil {
		return "", err
	}
	switch k.Algorithm {
	case "", checked.Algorithm:
		return checked.Algorithm, nil
	case "RS384", "RS512":
		if _, ok := k.Public.(*rsa.PublicKey); ok {
			return k.Algorithm, nil
		}
	}
	return "", fmt.Errorf("%w: algorithm %q does not fit a %s key", ErrInvalidDocumentOptions, k.Algorithm, checked.Algorithm)
}
