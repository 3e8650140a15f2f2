package statestore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Sealer is an envelope-encryption hook: it encrypts each value before it is saved and decrypts it
// after it is loaded. key is the value's document key; implementations should bind it to the
// ciphertext (as associated data) so values cannot be swapped between keys.
type Sealer interface {
	Seal(ctx context.Context, key string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, key string, ciphertext []byte) ([]byte, error)
}

// ErrSealed is matched by errors from Open when a value cannot be decrypted (wrong key, tampering,
// or a value written without the Sealer).
var ErrSealed = errors.New("statestore: cannot open sealed value")

// SealedStore is a Store whose values are sealed with a Sealer.
type SealedStore struct {
	inner  Store
	sealer Sealer
	keys   map[string]bool
}

// Sealed wraps inner so that values are sealed on Save and opened on Load. With keys given, only
// those document keys are sealed; otherwise every value is.
func Sealed(inner Store, sealer Sealer, keys ...string) *SealedStore {
	s := &SealedStore{inner: inner, sealer: sealer}
	if len(keys) > 0 {
		s.keys = map[string]bool{}
		for _, k := range keys {
			s.keys[k] = true
		}
	}
	return s
}

func (s *SealedStore) sealed(key string) bool { return s.keys == nil || s.keys[key] }

// Load implements Store.
func (s *SealedStore) Load(ctx context.Context) (*Document, error) {
	doc, err := s.inner.Load(ctx)
	if err != nil {
		return nil, err
	}
	out := &Document{Version: doc.Version, Data: make(map[string][]byte, len(doc.Data))}
	for k, v := range doc.Data {
		if !s.sealed(k) {
			out.Data[k] = v
			continue
		}
		p, err := s.sealer.Open(ctx, k, v)
		if err != nil {
			return nil, fmt.Errorf("statestore: opening %q: %w", k, err)
		}
		out.Data[k] = p
	}
	return out, nil
}

// Save implements Store.
func (s *SealedStore) Save(ctx context.Context, data map[string][]byte, version string) (string, error) {
	out := make(map[string][]byte, len(data))
	for k, v := range data {
		if !s.sealed(k) {
			out[k] = v
			continue
		}
		c, err := s.sealer.Seal(ctx, k, v)
		if err != nil {
			return "", fmt.Errorf("statestore: sealing %q: %w", k, err)
		}
		out[k] = c
	}
	return s.inner.Save(ctx, out, version)
}

// AESGCM is a Sealer with a local AES-256-GCM key (for example mounted from a file the Secret
// readers cannot see). Ciphertexts are version byte 1, a 12-byte random nonce, then the sealed
// value; the document key is the associated data.
type AESGCM struct {
	aead cipher.AEAD
}

// NewAESGCM returns an AESGCM sealer for a 32-byte key.
func NewAESGCM(key []byte) (*AESGCM, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("statestore: AES-GCM key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &AESGCM{aead: aead}, nil
}

const aesgcmVersion = 1

// Seal implements Sealer.
func (a *AESGCM) Seal(_ context.Context, key string, plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+a.aead.NonceSize(), 1+a.aead.NonceSize()+len(plaintext)+a.aead.Overhead())
	out[0] = aesgcmVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return a.aead.Seal(out, out[1:], plaintext, []byte(key)), nil
}

// Open implements Sealer.
func (a *AESGCM) Open(_ context.Context, key string, ciphertext []byte) ([]byte, error) {
	n := a.aead.NonceSize()
	if len(ciphertext) < 1+n+a.aead.Overhead() || ciphertext[0] != aesgcmVersion {
		return nil, fmt.Errorf("%w: not an AES-GCM v1 value", ErrSealed)
	}
	p, err := a.aead.Open(nil, ciphertext[1:1+n], ciphertext[1+n:], []byte(key))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSealed, err)
	}
	return p, nil
}
