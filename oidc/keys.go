package oidc

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/ekslink/ekslink/internal/regularfile"
)

// MinRSABits is the smallest RSA modulus ParseKeys accepts; MaxRSABits the largest.
const (
	MinRSABits = 2048
	MaxRSABits = 8192
)

// Size limits keep hostile input from turning key validation into a CPU sink: an RSA-8192 private
// key is under 5 KiB of DER.
const (
	maxKeyDER  = 16 << 10
	maxCertDER = 64 << 10
	maxJWKS    = 1 << 20
	// maxKeyInput bounds one key file or ParseKeys input (hundreds of keys or a CA bundle fit).
	maxKeyInput = 1 << 20
)

// Key errors, matched with errors.Is.
var (
	// ErrNoKeys means the input held no usable key.
	ErrNoKeys = errors.New("oidc: no keys found")
	// ErrUnsupportedKey is a key type STS cannot verify (Ed25519, DSA, X25519, other curves).
	ErrUnsupportedKey = errors.New("oidc: unsupported key type")
	// ErrWeakKey is an RSA key shorter than MinRSABits.
	ErrWeakKey = errors.New("oidc: key too weak")
	// ErrMalformedKey is input that is not a well-formed PEM block, DER structure or JWK.
	ErrMalformedKey = errors.New("oidc: malformed key")
)

// KeyError says which input and which block a key error comes from.
type KeyError struct {
	// Source is the file name (or "" for in-memory input).
	Source string
	// Block is the 1-based PEM block or JWK index inside Source.
	Block int
	// Type is the PEM block type or "JWK".
	Type string
	// Err is one of ErrUnsupportedKey, ErrWeakKey, ErrMalformedKey, ErrNoKeys with detail.
	Err error
}

// Error implements error.
func (e *KeyError) Error() string {
	where := "input"
	if e.Source != "" {
		where = e.Source
	}
	if e.Block > 0 {
		return fmt.Sprintf("%s: block %d (%s): %v", where, e.Block, e.Type, e.Err)
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

// Unwrap returns the underlying error.
func (e *KeyError) Unwrap() error { return e.Err }

// Key is one service-account key: always a public key, optionally its private key.
type Key struct {
	// ID is the JWK kid. ParseKeys sets it to KeyID(Public), as kube-apiserver does; set it to
	// publish explicit kids.
	ID string
	// Algorithm is the JWS algorithm the key signs with: RS256 for RSA (what kube-apiserver
	// signs with), ES256/ES384/ES512 for P-256/P-384/P-521.
	Algorithm string
	// Public is an *rsa.PublicKey or *ecdsa.PublicKey.
	Public crypto.PublicKey
	// Private is the matching private key, nil when only the public half was given.
	Private crypto.Signer
}

// KeyID returns the kid kube-apiserver assigns to a public key: base64url without padding of the
// SHA-256 of its PKIX DER encoding (not the RFC 7638 thumbprint).
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// NewKey checks a public or private key and returns it as a Key with kube-apiserver's kid.
func NewKey(k any) (Key, error) {
	var key Key
	switch v := k.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, *rsa.PublicKey, *ecdsa.PublicKey:
		if reflect.ValueOf(v).IsNil() {
			return Key{}, fmt.Errorf("%w: nil %T", ErrMalformedKey, k)
		}
	}
	switch v := k.(type) {
	case *rsa.PrivateKey:
		key.Private, key.Public = v, &v.PublicKey
	case *ecdsa.PrivateKey:
		// A JWK carries d, x and y separately; a d that does not belong to x, y would publish a
		// key that verifies nothing this key signs.
		//lint:ignore SA1019 a nil field must be an error here, not a panic in Bytes or ECDH
		if v.D == nil || v.Curve == nil || v.X == nil || v.Y == nil {
			return Key{}, fmt.Errorf("%w: incomplete ECDSA private key", ErrMalformedKey)
		}
		priv, err := v.ECDH()
		if err != nil {
			return Key{}, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
		}
		if pub, err := v.PublicKey.ECDH(); err != nil || !priv.PublicKey().Equal(pub) {
			return Key{}, fmt.Errorf("%w: ECDSA private key does not match its public point", ErrMalformedKey)
		}
		key.Private, key.Public = v, &v.PublicKey
	case *rsa.PublicKey, *ecdsa.PublicKey:
		key.Public = v
	case ed25519.PrivateKey, ed25519.PublicKey, *ed25519.PrivateKey:
		return Key{}, fmt.Errorf("%w: Ed25519 (EdDSA) is not accepted by AWS STS; use RSA-2048+ or ECDSA P-256", ErrUnsupportedKey)
	default:
		return Key{}, fmt.Errorf("%w: %T; use RSA-2048+ or ECDSA P-256/P-384/P-521", ErrUnsupportedKey, k)
	}
	switch pub := key.Public.(type) {
	case *rsa.PublicKey:
		if pub.N == nil || pub.N.BitLen() < MinRSABits {
			bits := 0
			if pub.N != nil {
				bits = pub.N.BitLen()
			}
			return Key{}, fmt.Errorf("%w: RSA key has %d bits, need at least %d", ErrWeakKey, bits, MinRSABits)
		}
		if pub.N.BitLen() > MaxRSABits {
			return Key{}, fmt.Errorf("%w: RSA key has %d bits, at most %d are supported", ErrUnsupportedKey, pub.N.BitLen(), MaxRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return Key{}, fmt.Errorf("%w: RSA public exponent %d", ErrMalformedKey, pub.E)
		}
		key.Algorithm = "RS256"
	case *ecdsa.PublicKey:
		//lint:ignore SA1019 a nil coordinate must be an error here, not a panic in Bytes
		if pub.Curve == nil || pub.X == nil || pub.Y == nil {
			return Key{}, fmt.Errorf("%w: ECDSA key without a curve or point", ErrMalformedKey)
		}
		switch pub.Curve {
		case elliptic.P256():
			key.Algorithm = "ES256"
		case elliptic.P384():
			key.Algorithm = "ES384"
		case elliptic.P521():
			key.Algorithm = "ES512"
		default:
			return Key{}, fmt.Errorf("%w: ECDSA curve %s; use P-256, P-384 or P-521", ErrUnsupportedKey, pub.Curve.Params().Name)
		}
		if _, err := pub.Bytes(); err != nil {
			return Key{}, fmt.Errorf("%w: %v", ErrMalformedKey, err)
		}
	}
	id, err := KeyID(key.Public)
	if err != nil {
		return Key{}, err
	}
	key.ID = id
	return key, nil
}

// ParseKeys parses every key in data: PEM blocks of any mix of PKCS#1, PKCS#8 and SEC1 private
// keys, PKIX and PKCS#1 public keys and X.509 certificates (their public key), or a JSON JWK or
// JWK set. Keys that appear more than once (a private key and its public key, say) are collapsed
// into one entry that keeps the private half; order is first appearance. Any unusable block is an
// error (a *KeyError wrapping ErrUnsupportedKey, ErrWeakKey or ErrMalformedKey): a key set that
// silently drops a key is worse than one that fails.
func ParseKeys(data []byte) ([]Key, error) {
	return parseKeys("", data)
}

// ParseKeyFiles reads and parses the files with ParseKeys, collapsing duplicates across files.
func ParseKeyFiles(paths ...string) ([]Key, error) {
	var all []Key
	for _, p := range paths {
		data, err := readLimited(p, maxKeyInput)
		if err != nil {
			return nil, fmt.Errorf("oidc: reading keys: %w", err)
		}
		keys, err := parseKeys(p, data)
		if err != nil {
			return nil, err
		}
		all = append(all, keys...)
	}
	return dedupe(all), nil
}

// readLimited reads at most limit bytes of a regular file. A larger file is an error rather than
// an unbounded allocation; a named pipe or a device (/dev/zero) is refused without being opened
// in a way that could block.
func readLimited(path string, limit int64) ([]byte, error) {
	data, err := regularfile.Read(path, limit)
	if tl := (*regularfile.TooLargeError)(nil); errors.As(err, &tl) {
		return nil, &KeyError{Source: path, Err: fmt.Errorf("%w: larger than %d bytes; no key file is that big", ErrMalformedKey, limit)}
	}
	return data, err
}

func parseKeys(source string, data []byte) ([]Key, error) {
	if len(data) > maxKeyInput {
		return nil, &KeyError{Source: source, Err: fmt.Errorf("%w: %d bytes is larger than any key file (limit %d)", ErrMalformedKey, len(data), maxKeyInput)}
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		if len(trimmed) > maxJWKS {
			return nil, &KeyError{Source: source, Type: "JWKS", Err: fmt.Errorf("%w: %d bytes is larger than any key set", ErrMalformedKey, len(trimmed))}
		}
		keys, err := parseJWKs(source, trimmed)
		if err != nil {
			return nil, err
		}
		return dedupe(keys), nil
	}
	var keys []Key
	rest := data
	decoded := 0
	for i := 1; ; i++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		decoded++
		fail := func(err error) error { return &KeyError{Source: source, Block: i, Type: block.Type, Err: err} }
		if len(block.Headers) > 0 {
			if _, ok := block.Headers["Proc-Type"]; ok {
				return nil, fail(fmt.Errorf("%w: encrypted PEM is not supported; decrypt the key first", ErrUnsupportedKey))
			}
		}
		if len(block.Bytes) > maxKeyDER && block.Type != "CERTIFICATE" || len(block.Bytes) > maxCertDER {
			return nil, fail(fmt.Errorf("%w: %d-byte block is larger than any supported key", ErrMalformedKey, len(block.Bytes)))
		}
		var parsed any
		var err error
		switch block.Type {
		case "RSA PRIVATE KEY":
			parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "PRIVATE KEY":
			parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			parsed, err = x509.ParseECPrivateKey(block.Bytes)
		case "PUBLIC KEY":
			parsed, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			parsed, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				parsed = cert.PublicKey
			}
		case "EC PARAMETERS":
			continue // openssl ecparam -genkey writes these before the key
		case "ENCRYPTED PRIVATE KEY":
			return nil, fail(fmt.Errorf("%w: encrypted PKCS#8 is not supported; decrypt the key first", ErrUnsupportedKey))
		case "OPENSSH PRIVATE KEY":
			return nil, fail(fmt.Errorf("%w: OpenSSH key format; convert with ssh-keygen -p -m PEM", ErrUnsupportedKey))
		default:
			return nil, fail(fmt.Errorf("%w: PEM block type %q", ErrUnsupportedKey, block.Type))
		}
		if err != nil {
			if isUnsupportedAlgorithm(err) {
				return nil, fail(fmt.Errorf("%w: %v", ErrUnsupportedKey, err))
			}
			return nil, fail(fmt.Errorf("%w: %v", ErrMalformedKey, err))
		}
		k, err := NewKey(parsed)
		if err != nil {
			return nil, fail(err)
		}
		keys = append(keys, k)
	}
	// pem.Decode silently skips a block it cannot decode (bad base64, missing END line): count
	// the BEGIN lines so a damaged key fails instead of vanishing from the key set.
	if begins := bytes.Count(data, []byte("-----BEGIN ")); begins != decoded {
		return nil, &KeyError{Source: source, Err: fmt.Errorf("%w: %d PEM BEGIN lines but only %d well-formed blocks (bad base64 or a missing END line)", ErrMalformedKey, begins, decoded)}
	}
	if len(keys) == 0 {
		if bytes.HasPrefix(trimmed, []byte("ssh-")) || bytes.HasPrefix(trimmed, []byte("ecdsa-sha2-")) {
			return nil, &KeyError{Source: source, Err: fmt.Errorf("%w: OpenSSH public key; convert it with ssh-keygen -e -m PKCS8 -f <file>", ErrUnsupportedKey)}
		}
		return nil, &KeyError{Source: source, Err: fmt.Errorf("%w: expected PEM keys or certificates, or a JWK/JWKS", ErrNoKeys)}
	}
	return dedupe(keys), nil
}

func isUnsupportedAlgorithm(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "unknown public key algorithm") ||
		strings.Contains(msg, "unknown private key algorithm") ||
		strings.Contains(msg, "PKCS#8 wrapping contained private key with unknown algorithm") ||
		strings.Contains(msg, "unsupported elliptic curve") ||
		strings.Contains(msg, "unknown elliptic curve")
}

func parseJWKs(source string, data []byte) ([]Key, error) {
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, &KeyError{Source: source, Type: "JWK", Err: fmt.Errorf("%w: %v", ErrMalformedKey, err)}
	}
	var raws []json.RawMessage
	if probe.Keys != nil {
		if err := json.Unmarshal(probe.Keys, &raws); err != nil {
			return nil, &KeyError{Source: source, Type: "JWKS", Err: fmt.Errorf("%w: %v", ErrMalformedKey, err)}
		}
	} else {
		raws = []json.RawMessage{data}
	}
	var keys []Key
	for i, raw := range raws {
		fail := func(err error) error { return &KeyError{Source: source, Block: i + 1, Type: "JWK", Err: err} }
		var kty struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			Kid string `json:"kid"`
		}
		if err := json.Unmarshal(raw, &kty); err != nil {
			return nil, fail(fmt.Errorf("%w: %v", ErrMalformedKey, err))
		}
		switch kty.Kty {
		case "RSA", "EC":
		case "OKP":
			return nil, fail(fmt.Errorf("%w: %s/%s (EdDSA) is not accepted by AWS STS", ErrUnsupportedKey, kty.Kty, kty.Crv))
		default:
			return nil, fail(fmt.Errorf("%w: JWK kty %q", ErrUnsupportedKey, kty.Kty))
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			return nil, fail(fmt.Errorf("%w: %v", ErrMalformedKey, err))
		}
		k, err := NewKey(jwk.Key)
		if err != nil {
			return nil, fail(err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, &KeyError{Source: source, Type: "JWKS", Err: fmt.Errorf("%w: empty JWK set", ErrNoKeys)}
	}
	return keys, nil
}

// dedupe collapses keys with the same public key (same kid as computed from PKIX DER), keeping the
// first position and any private half.
func dedupe(keys []Key) []Key {
	out := make([]Key, 0, len(keys))
	index := map[string]int{}
	for _, k := range keys {
		fp, err := KeyID(k.Public)
		if err != nil {
			continue
		}
		if i, ok := index[fp]; ok {
			if out[i].Private == nil && k.Private != nil {
				out[i].Private = k.Private
			}
			continue
		}
		index[fp] = len(out)
		out = append(out, k)
	}
	return out
}
