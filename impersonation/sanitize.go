package impersonation

import (
	"hash/maphash"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sanitize removes, case-insensitively, every header a client could use to spoof an identity or
// that must not cross a proxy: Authorization, Proxy-Authorization, Impersonate-*, X-Remote-*,
// Forwarded, X-Forwarded-*, X-Real-Ip, bearer-token WebSocket subprotocols
// ("base64url.bearer.authorization.k8s.io.*"), hop-by-hop headers and the headers Connection
// names. A protocol upgrade request keeps exactly "Connection: Upgrade" and its Upgrade header
// (the other WebSocket and SPDY negotiation headers are end-to-end and kept). It takes time
// linear in the size of the headers, however many names Connection lists.
func Sanitize(h http.Header) {
	upgrade := removeConnectionNamed(h)
	var buf [64]byte
	for k := range h {
		switch stripRule(lowerKey(&buf, k)) {
		case stripHeader:
			delete(h, k)
		case stripSubprotocols:
			stripBearerSubprotocols(h, k)
		}
	}
	if upgrade != "" {
		h["Connection"] = []string{"Upgrade"}
		h["Upgrade"] = []string{upgrade}
	}
}

// What Sanitize does with a header.
const (
	keepHeader = iota
	stripHeader
	stripSubprotocols
)

// stripRule says what Sanitize does with the header of lowercase name l: remove credentials
// (Authorization, Proxy-Authorization), forwarding claims (Forwarded, X-Forwarded-*, X-Real-Ip,
// X-Remote-*), impersonation (Impersonate-*) and the hop-by-hop headers of RFC 9110 §7.6.1 plus
// the de-facto ones; filter Sec-WebSocket-Protocol; keep the rest.
func stripRule(l []byte) int {
	switch string(l) {
	case "authorization", "forwarded", "x-real-ip",
		"connection", "proxy-connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
		"te", "trailer", "transfer-encoding", "upgrade":
		return stripHeader
	case "sec-websocket-protocol":
		return stripSubprotocols
	}
	for _, p := range [...]string{"impersonate-", "x-remote-", "x-forwarded-"} {
		if len(l) >= len(p) && string(l[:len(p)]) == p {
			return stripHeader
		}
	}
	return keepHeader
}

// bearerSubprotocolPrefix marks a WebSocket subprotocol carrying a bearer token, which the API
// server accepts as a credential when the Authorization header does not authenticate.
const bearerSubprotocolPrefix = "base64url.bearer.authorization.k8s.io."

// stripBearerSubprotocols removes the credential-carrying entries from the Sec-WebSocket-Protocol
// header stored under key k, keeping the real subprotocols (the header goes when none is left).
func stripBearerSubprotocols(h http.Header, k string) {
	var keep []string
	for _, v := range h[k] {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" || len(p) >= len(bearerSubprotocolPrefix) && strings.EqualFold(p[:len(bearerSubprotocolPrefix)], bearerSubprotocolPrefix) {
				continue
			}
			keep = append(keep, p)
		}
	}
	if len(keep) == 0 {
		delete(h, k)
		return
	}
	h[k] = []string{strings.Join(keep, ", ")}
}

// removeConnectionNamed deletes the headers that the Connection header (under any spelling of
// its name) names, comparing names as strings.EqualFold does, in time linear in the size of the
// headers, and returns what UpgradeType returned before (the Upgrade header is read before the
// "upgrade" token deletes it). The first distinct tokens (the usual "keep-alive" or "Upgrade")
// are looked for by a scan of the headers each, within scanBudget; the others in an index of
// the folded header names built in one pass (one entry per header, so bounded by the request
// itself, and no allocation per entry). Deleting with a scan of every header per token made one
// 56 KB request with 14,000 tokens and 4,000 empty headers cost ~0.5 s of CPU.
func removeConnectionNamed(h http.Header) (upgrade string) {
	var conn [][]string
	for k, vs := range h {
		if strings.EqualFold(k, "Connection") {
			conn = append(conn, vs)
		}
	}
	if len(conn) == 0 {
		return ""
	}
	var idx *foldIndex
	scans := 0
	upgradeSeen := false
	prev := ""
	for _, vs := range conn {
		for _, v := range vs {
			for tok := range strings.SplitSeq(v, ",") {
				if tok = strings.TrimSpace(tok); tok == "" || tok == prev {
					continue // a repeated token: its headers are gone already
				}
				prev = tok
				if !upgradeSeen && strings.EqualFold(tok, "upgrade") {
					upgradeSeen = true
					upgrade = headerGetFold(h, "Upgrade")
				}
				if idx == nil && (scans < minScans || (scans+1)*len(h) <= scanBudget) {
					scans++
					deleteFold(h, tok)
					continue
				}
				if idx == nil {
					idx = newFoldIndex(h)
				}
				idx.deleteFold(h, tok)
			}
		}
	}
	return upgrade
}

// removeConnectionNamed scans the headers for up to scanBudget header visits, or for its first
// minScans distinct tokens however many headers there are (a linear cost: a repeated token, as
// in "a, a, a, ...", then needs no index), before it indexes the headers instead.
const (
	scanBudget = 128
	minScans   = 2
)

// foldIndex finds the keys of a header map equal to a name under strings.EqualFold without a
// scan: keys are chained by a seeded hash of their folded form (foldKey), and each candidate is
// confirmed with EqualFold itself, so a hash collision costs time, never a wrong answer.
type foldIndex struct {
	seed maphash.Seed
	head map[uint64]int32 // hash -> 1 + position in keys of the last key with that hash
	keys []string
	prev []int32 // 1 + position of the previous key with the same hash; 0 ends the chain
}

func newFoldIndex(h http.Header) *foldIndex {
	x := &foldIndex{
		seed: maphash.MakeSeed(),
		head: make(map[uint64]int32, len(h)),
		keys: make([]string, 0, len(h)),
		prev: make([]int32, 0, len(h)),
	}
	var buf [64]byte
	for k := range h {
		sum := maphash.Bytes(x.seed, foldKey(buf[:0], k))
		x.keys = append(x.keys, k)
		x.prev = append(x.prev, x.head[sum])
		x.head[sum] = int32(len(x.keys))
	}
	return x
}

// deleteFold deletes from h every key of the index equal to name under strings.EqualFold.
func (x *foldIndex) deleteFold(h http.Header, name string) {
	var buf [64]byte
	for i := x.head[maphash.Bytes(x.seed, foldKey(buf[:0], name))]; i != 0; i = x.prev[i-1] {
		if k := x.keys[i-1]; strings.EqualFold(k, name) {
			delete(h, k)
		}
	}
}

// foldKey appends to dst a form of s that is the same for two strings exactly when
// strings.EqualFold reports them equal: every rune is replaced by one fixed member of its
// simple case-folding orbit (ASCII letters by their lower case, which is the ASCII member of
// any orbit that has one; invalid UTF-8 bytes read as U+FFFD, as EqualFold reads them).
func foldKey(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			for _, r := range s[i:] {
				dst = utf8.AppendRune(dst, foldRune(r))
			}
			return dst
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// foldRune is the representative of r's case-folding orbit: its ASCII member in lower case if it
// has one (K, k and the Kelvin sign all give k), otherwise its smallest member.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < utf8.RuneSelf {
			return foldRune(f)
		}
		m = min(m, f)
	}
	return m
}
