package podidentity

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// tokenLeeway tolerates clock differences between the node and the API server for exp and nbf.
const tokenLeeway = 30 * time.Second

// tokenClaims are the claims the agent checks before any upstream call. The signature is not
// verified here (EKS Auth does that); the checks only keep garbage away from the upstream budget.
type tokenClaims struct {
	Expiry    time.Time
	NotBefore time.Time
}

// looksLikeJWT is the cheap check done on every request: size and three non-empty dot-separated parts.
func looksLikeJWT(token string, maxBytes int) error {
	if token == "" {
		return fmt.Errorf("no token: send the projected service account token in the Authorization header")
	}
	if len(token) > maxBytes {
		return fmt.Errorf("token is %d bytes, the limit is %d", len(token), maxBytes)
	}
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	if first <= 0 || last == first || last == len(token)-1 || strings.Count(token, ".") != 2 {
		return fmt.Errorf("token is not a JWS compact serialization (header.payload.signature)")
	}
	return nil
}

// parseClaims decodes the payload of a token that passed looksLikeJWT and checks exp and nbf.
func parseClaims(token string, now time.Time) (tokenClaims, error) {
	parts := strings.SplitN(token, ".", 3)
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || !json.Valid(header) {
		return tokenClaims{}, fmt.Errorf("token header is not base64url JSON")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return tokenClaims{}, fmt.Errorf("token payload is not base64url")
	}
	var c struct {
		Exp *json.Number `json:"exp"`
		Nbf *json.Number `json:"nbf"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return tokenClaims{}, fmt.Errorf("token payload is not a JSON object")
	}
	if c.Exp == nil {
		return tokenClaims{}, fmt.Errorf("token has no exp claim")
	}
	exp, err := c.Exp.Int64()
	if err != nil {
		return tokenClaims{}, fmt.Errorf("token exp claim is not an integer")
	}
	out := tokenClaims{Expiry: time.Unix(exp, 0)}
	if !now.Before(out.Expiry.Add(tokenLeeway)) {
		return tokenClaims{}, fmt.Errorf("token expired at %s", out.Expiry.UTC().Format(time.RFC3339))
	}
	if c.Nbf != nil {
		nbf, err := c.Nbf.Int64()
		if err != nil {
			return tokenClaims{}, fmt.Errorf("token nbf claim is not an integer")
		}
		out.NotBefore = time.Unix(nbf, 0)
		if now.Add(tokenLeeway).Before(out.NotBefore) {
			return tokenClaims{}, fmt.Errorf("token is not valid before %s", out.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	return out, nil
}
