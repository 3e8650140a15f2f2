package impersonation

import (
	"net/http"
	"slices"
	"strings"
)

// Impersonation header names (see the Kubernetes authentication documentation).
const (
	HeaderUser        = "Impersonate-User"
	HeaderUID         = "Impersonate-Uid"
	HeaderGroup       = "Impersonate-Group"
	HeaderExtraPrefix = "Impersonate-Extra-"
)

// RoundTripper forwards each request as the Identity found in its context (WithIdentity). It first
// removes every header a client could use to claim another identity or confuse the upstream
// (Authorization, Proxy-Authorization, Impersonate-*, X-Remote-*, Forwarded, X-Forwarded-*,
// X-Real-Ip, bearer-token WebSocket subprotocols and all hop-by-hop headers, including those a
// Connection header names), then sets the Impersonate-* headers. It sits below any reverse proxy
// logic, so a "Connection: Impersonate-User" trick cannot delete what it set. A request without
// a valid identity fails with an error wrapping ErrNoIdentity (or another identity error) and
// never reaches Base.
//
// Base authenticates the proxy itself (for example a *Transport, which sets
// "Authorization: Bearer <own token>", or a client-go rest.TransportFor transport).
type RoundTripper struct {
	// Base sends the rewritten request. Required.
	Base http.RoundTripper
	// StripHeaders are additional request headers to remove (for example the header the
	// identity was read from).
	StripHeaders []string
}

// NewRoundTripper returns a RoundTripper over base.
func NewRoundTripper(base http.RoundTripper, stripHeaders ...string) *RoundTripper {
	return &RoundTripper{Base: base, StripHeaders: stripHeaders}
}

// RoundTrip implements http.RoundTripper.
func (rt *RoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	id, ok := IdentityFromContext(req.Context())
	if !ok {
		closeBody(req)
		return nil, ErrNoIdentity
	}
	if err := id.Validate(); err != nil {
		closeBody(req)
		return nil, err
	}
	out := req.Clone(req.Context())
	if out.Header == nil {
		out.Header = http.Header{}
	}
	out.Trailer = nil // the API server never reads request trailers; do not carry headers there
	Sanitize(out.Header)
	for _, h := range rt.StripHeaders {
		deleteFold(out.Header, h)
	}
	SetIdentityHeaders(out.Header, id)
	if t, ok := rt.Base.(*Transport); ok {
		return t.roundTripOwned(out) // out is ours: no second copy
	}
	return rt.Base.RoundTrip(out)
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// lowerKey returns k in lower case, in buf when k is short ASCII (no allocation), otherwise as
// strings.ToLower does it (so non-ASCII keys are matched exactly as before).
func lowerKey(buf *[64]byte, k string) []byte {
	if len(k) <= len(buf) {
		b := buf[:len(k)]
		ascii := true
		for i := 0; i < len(k); i++ {
			c := k[i]
			if c >= 0x80 {
				ascii = false
				break
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
		}
		if ascii {
			return b
		}
	}
	return []byte(strings.ToLower(k))
}

// hasImpersonatePrefix reports whether the lowercase key starts with "impersonate-".
func hasImpersonatePrefix(l []byte) bool {
	return len(l) >= len("impersonate-") && string(l[:len("impersonate-")]) == "impersonate-"
}

// UpgradeType returns the protocol a request asks to upgrade to ("websocket", "SPDY/3.1"), or "".
func UpgradeType(h http.Header) string {
	if !headerHasToken(h, "Connection", "upgrade") {
		return ""
	}
	return headerGetFold(h, "Upgrade")
}

// SetIdentityHeaders sets the Impersonate-* headers for id, replacing any present. Extra keys are
// lowercased and percent-escaped as the API server expects.
func SetIdentityHeaders(h http.Header, id Identity) {
	var buf [64]byte
	for k := range h {
		if hasImpersonatePrefix(lowerKey(&buf, k)) {
			delete(h, k)
		}
	}
	h[HeaderUser] = []string{id.User}
	if id.UID != "" {
		h[HeaderUID] = []string{id.UID}
	}
	if len(id.Groups) > 0 {
		h[HeaderGroup] = append([]string(nil), id.Groups...)
	}
	var arr [8]string
	keys := arr[:0]
	for k := range id.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if len(id.Extra[k]) == 0 {
			continue
		}
		name := extraHeaderName(k)
		h[name] = append(h[name], id.Extra[k]...)
	}
}

// extraHeaderName is the header carrying extra key k: lowercased and escaped, precomputed for
// the keys the default mapping sets.
func extraHeaderName(k string) string {
	switch k {
	case ExtraARN:
		return HeaderExtraPrefix + ExtraARN
	case ExtraSessionName:
		return HeaderExtraPrefix + ExtraSessionName
	}
	return HeaderExtraPrefix + escapeExtraKey(strings.ToLower(k))
}

// escapeExtraKey percent-encodes every byte that is not a legal header-name character, and '%'
// itself, matching the API server's url.PathUnescape of the key.
func escapeExtraKey(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c != '%' && isTokenChar(c) {
			b.WriteByte(c)
			continue
		}
		const hex = "0123456789ABCDEF"
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func deleteFold(h http.Header, name string) {
	for k := range h {
		if strings.EqualFold(k, name) {
			delete(h, k)
		}
	}
}

func headerGetFold(h http.Header, name string) string {
	if vs := h[http.CanonicalHeaderKey(name)]; len(vs) > 0 {
		return vs[0]
	}
	for k, vs := range h {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

func headerHasToken(h http.Header, name, token string) bool {
	for k, vs := range h {
		if !strings.EqualFold(k, name) {
			continue
		}
		for _, v := range vs {
			for tok := range strings.SplitSeq(v, ",") {
				if strings.EqualFold(strings.TrimSpace(tok), token) {
					return true
				}
			}
		}
	}
	return false
}
