package oidc

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
)

// Handler serves the discovery document and the JWKS with kube-apiserver's content types and
// Cache-Control, plus a strong ETag (If-None-Match answers 304). Only GET and HEAD are allowed.
// SetKeys swaps both documents atomically: a client never sees a discovery document and a JWKS
// from different key sets. It serves two paths: the issuer's path plus DiscoveryPath, and the
// jwks_uri's path.
type Handler struct {
	issuer   string
	opts     DocumentOptions
	discPath string
	jwksPath string
	docs     atomic.Pointer[servedDocs]
}

type servedDocs struct {
	disc, jwks         []byte
	discETag, jwksETag string
}

// NewHandler builds a Handler for issuer and keys; opts are as for Documents.
func NewHandler(issuer string, keys []Key, opts DocumentOptions) (*Handler, error) {
	h := &Handler{issuer: issuer, opts: opts}
	jwksURI := h.opts.JWKSURI
	if jwksURI == "" {
		jwksURI = strings.TrimSuffix(issuer, "/") + KubeJWKSPath
	}
	iu, err := url.Parse(issuer)
	if err != nil {
		return nil, &IssuerError{Issuer: issuer, Reason: err.Error()}
	}
	ju, err := url.Parse(jwksURI)
	if err != nil {
		return nil, err
	}
	h.discPath = strings.TrimSuffix(iu.EscapedPath(), "/") + DiscoveryPath
	h.jwksPath = ju.EscapedPath()
	if err := h.SetKeys(keys); err != nil {
		return nil, err
	}
	return h, nil
}

// SetKeys renders the documents for a new key set and swaps them in; on error the old documents
// stay in place.
func (h *Handler) SetKeys(keys []Key) error {
	disc, jwks, err := Documents(h.issuer, keys, h.opts)
	if err != nil {
		return err
	}
	h.docs.Store(&servedDocs{disc: disc, jwks: jwks, discETag: etag(disc), jwksETag: etag(jwks)})
	return nil
}

// Documents returns the documents currently served.
func (h *Handler) Documents() (discovery, jwks []byte) {
	d := h.docs.Load()
	return d.disc, d.jwks
}

// DiscoveryPath is the URL path the discovery document is served at.
func (h *Handler) DiscoveryPath() string { return h.discPath }

// JWKSPath is the URL path the JWKS is served at.
func (h *Handler) JWKSPath() string { return h.jwksPath }

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := h.docs.Load()
	var body []byte
	var tag, ctype string
	switch r.URL.EscapedPath() {
	case h.discPath:
		body, tag, ctype = d.disc, d.discETag, ContentTypeDiscovery
	case h.jwksPath:
		body, tag, ctype = d.jwks, d.jwksETag, ContentTypeJWKS
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", CacheControl)
	hdr.Set("ETag", tag)
	if etagMatches(r.Header.Get("If-None-Match"), tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", ctype)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

func etagMatches(header, tag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}
