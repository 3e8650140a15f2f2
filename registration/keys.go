package registration

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// AgentDateLayout is the layout of privateKeyCreatedDate the SSM agent parses; any other format
// silently disables the agent's key rotation.
const AgentDateLayout = "2006-01-02 15:04:05.999999999 -0700 MST"

// KeyBits is the RSA key size SSM expects.
const KeyBits = 2048

// Key is an RSA key pair in the encodings the SSM agent and API use.
type Key struct {
	// PrivateKey is the standard base64 of the PKCS#1 DER private key.
	PrivateKey string `json:"privateKey"`
	// PublicKey is the standard base64 of the PKIX DER public key.
	PublicKey string `json:"publicKey"`
	// Type is "Rsa".
	Type string `json:"privateKeyType"`
	// CreatedDate is when the key was made, in AgentDateLayout, kept verbatim.
	CreatedDate string `json:"privateKeyCreatedDate"`
}

// GenerateKey makes a new RSA-2048 key dated now.
func GenerateKey(now time.Time) (Key, error) {
	pk, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return Key{}, fmt.Errorf("registration: generating RSA key: %w", err)
	}
	return KeyFromRSA(pk, now)
}

// KeyFromRSA encodes an existing RSA private key.
func KeyFromRSA(pk *rsa.PrivateKey, created time.Time) (Key, error) {
	pub, err := x509.MarshalPKIXPublicKey(&pk.PublicKey)
	if err != nil {
		return Key{}, err
	}
	return Key{
		PrivateKey:  base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(pk)),
		PublicKey:   base64.StdEncoding.EncodeToString(pub),
		Type:        PublicKeyType,
		CreatedDate: created.Format(AgentDateLayout),
	}, nil
}

// ErrInvalidKey is matched by Key.Validate errors.
var ErrInvalidKey = errors.New("registration: invalid key material")

// RSA parses the private key.
func (k Key) RSA() (*rsa.PrivateKey, error) {
	der, err := base64.StdEncoding.DecodeString(k.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%w: private key is not standard base64: %v", ErrInvalidKey, err)
	}
	pk, err := x509.ParsePKCS1PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: private key is not PKCS#1 RSA: %v", ErrInvalidKey, err)
	}
	return pk, nil
}

// Validate checks that the private key parses, is RSA of at least 2048 bits, the public key (when
// present) belongs to it, the type is Rsa and the date is in the agent's layout. It is for key
// material ekslink made or derived; a record the agent wrote is checked by RegistrationKey.Validate,
// which ignores the agent's publicKey.
func (k Key) Validate() error {
	pk, err := k.RSA()
	if err != nil {
		return err
	}
	if pk.N.BitLen() < KeyBits {
		return fmt.Errorf("%w: RSA key has %d bits, want at least %d", ErrInvalidKey, pk.N.BitLen(), KeyBits)
	}
	if k.PublicKey != "" {
		want, err := x509.MarshalPKIXPublicKey(&pk.PublicKey)
		if err != nil {
			return err
		}
		if base64.StdEncoding.EncodeToString(want) != k.PublicKey {
			return fmt.Errorf("%w: public key does not belong to the private key", ErrInvalidKey)
		}
	}
	if k.Type != PublicKeyType {
		return fmt.Errorf("%w: key type %q, want %q", ErrInvalidKey, k.Type, PublicKeyType)
	}
	if _, err := time.Parse(AgentDateLayout, k.CreatedDate); err != nil {
		return fmt.Errorf("%w: created date %q is not in the agent's layout %q (the agent would never rotate the key)", ErrInvalidKey, k.CreatedDate, AgentDateLayout)
	}
	return nil
}

// WithPublicKey returns k with PublicKey derived from the private key (the agent's rotated
// RegistrationKey carries a stale or empty one).
func (k Key) WithPublicKey() (Key, error) {
	pk, err := k.RSA()
	if err != nil {
		return k, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&pk.PublicKey)
	if err != nil {
		return k, err
	}
	k.PublicKey = base64.StdEncoding.EncodeToString(pub)
	return k, nil
}

// NewFingerprint returns a random UUIDv4 instance fingerprint.
func NewFingerprint() (string, error) {
	id, err := uuid.NewRandomFromReader(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("registration: generating fingerprint: %w", err)
	}
	return id.String(), nil
}
