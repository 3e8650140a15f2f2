package oidc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// KeyType names a key GenerateKey can make.
type KeyType string

// Key types: RSA with a modulus size (signing RS256), ECDSA on a NIST curve (ES256/384/512).
const (
	RSA2048 KeyType = "rsa-2048" // RSA2048 is the default and what most clusters use.
	RSA3072 KeyType = "rsa-3072" // RSA3072 is RSA with a 3072-bit modulus.
	RSA4096 KeyType = "rsa-4096" // RSA4096 is RSA with a 4096-bit modulus.
	P256    KeyType = "p-256"    // P256 is ECDSA P-256 (ES256), small and fast.
	P384    KeyType = "p-384"    // P384 is ECDSA P-384 (ES384).
	P521    KeyType = "p-521"    // P521 is ECDSA P-521 (ES512).
)

// GenerateKey makes a new signing key (crypto/rand).
func GenerateKey(t KeyType) (Key, error) {
	var priv crypto.Signer
	var err error
	switch t {
	case RSA2048, "":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		priv, err = rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		priv, err = rsa.GenerateKey(rand.Reader, 4096)
	case P256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case P384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case P521:
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	default:
		return Key{}, fmt.Errorf("%w: key type %q (want %s, %s, %s, %s, %s or %s)", ErrUnsupportedKey, t, RSA2048, RSA3072, RSA4096, P256, P384, P521)
	}
	if err != nil {
		return Key{}, err
	}
	return NewKey(priv)
}

// PrivateKeyPEM encodes the key's private half as PKCS#8 PEM (what
// --service-account-signing-key-file accepts).
func (k Key) PrivateKeyPEM() ([]byte, error) {
	if k.Private == nil {
		return nil, fmt.Errorf("oidc: key %s has no private half", k.ID)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// PublicKeyPEM encodes the public key as PKIX PEM (what --service-account-key-file accepts).
func (k Key) PublicKeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
