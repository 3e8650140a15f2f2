package oidc

import (
	"fmt"
	"time"
)

// Rotation defaults.
const (
	// DefaultMaxTokenTTL is the pod-identity-webhook's default projected token lifetime (86400 s).
	// Raise it to --service-account-max-token-expiration if tokens may live longer.
	DefaultMaxTokenTTL = 24 * time.Hour
	// DefaultCacheMargin covers caches of the JWKS (Cache-Control max-age is one hour) and clock
	// skew.
	DefaultCacheMargin = time.Hour
)

// RotationPolicy says how long a retired key must stay published.
type RotationPolicy struct {
	// MaxTokenTTL is the longest lifetime of a token signed with the key (default
	// DefaultMaxTokenTTL).
	MaxTokenTTL time.Duration
	// CacheMargin is added on top for JWKS caches and clock skew (default DefaultCacheMargin).
	CacheMargin time.Duration
}

func (p RotationPolicy) withDefaults() RotationPolicy {
	if p.MaxTokenTTL <= 0 {
		p.MaxTokenTTL = DefaultMaxTokenTTL
	}
	if p.CacheMargin <= 0 {
		p.CacheMargin = DefaultCacheMargin
	}
	return p
}

// RetiringKey is a key that no longer signs but must still verify tokens it signed.
type RetiringKey struct {
	Key Key
	// LastSigned is when the key signed its last token (when kube-apiserver stopped using it).
	LastSigned time.Time
}

// RemovableAt is the earliest safe time to stop publishing the key: LastSigned plus the longest
// token lifetime plus the cache margin.
func (k RetiringKey) RemovableAt(p RotationPolicy) time.Time {
	p = p.withDefaults()
	return k.LastSigned.Add(p.MaxTokenTTL).Add(p.CacheMargin)
}

// Rotation is a published key set during key rotation: Active keys sign (kube-apiserver signs with
// one of them) and Retiring keys only verify. Keys returns what to publish.
type Rotation struct {
	Active   []Key
	Retiring []RetiringKey
}

// Keys returns the keys to publish: active first, then retiring, duplicates collapsed.
func (r Rotation) Keys() []Key {
	out := append([]Key(nil), r.Active...)
	for _, k := range r.Retiring {
		out = append(out, k.Key)
	}
	return dedupe(out)
}

// Retire moves the active key with the given kid to Retiring, last used at lastSigned. Retiring
// the last active key is refused: nothing could sign new tokens.
func (r Rotation) Retire(kid string, lastSigned time.Time) (Rotation, error) {
	for i, k := range r.Active {
		if k.ID != kid {
			continue
		}
		if len(r.Active) == 1 {
			return r, fmt.Errorf("oidc: refusing to retire %q: it is the only active key; add the new key first", kid)
		}
		next := Rotation{
			Active:   append(append([]Key(nil), r.Active[:i]...), r.Active[i+1:]...),
			Retiring: append(append([]RetiringKey(nil), r.Retiring...), RetiringKey{Key: k, LastSigned: lastSigned}),
		}
		return next, nil
	}
	return r, fmt.Errorf("oidc: no active key with kid %q", kid)
}

// Prune drops retiring keys whose RemovableAt is not after now and returns them.
func (r Rotation) Prune(now time.Time, p RotationPolicy) (Rotation, []RetiringKey) {
	next := Rotation{Active: append([]Key(nil), r.Active...)}
	var removed []RetiringKey
	for _, k := range r.Retiring {
		if now.Before(k.RemovableAt(p)) {
			next.Retiring = append(next.Retiring, k)
		} else {
			removed = append(removed, k)
		}
	}
	return next, removed
}
