package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// ErrFetch is wrapped by Fetch errors.
var ErrFetch = errors.New("oidc: fetching issuer documents")

// Published is what an issuer serves, fetched the way STS fetches it.
type Published struct {
	// Discovery and JWKS are the raw documents.
	Discovery []byte
	JWKS      []byte
	// JWKSURI is the jwks_uri from the discovery document.
	JWKSURI string
	// Warnings are problems STS may tolerate but people should fix (content types, caching).
	Warnings []string
}

// Fetch downloads issuer + DiscoveryPath and the jwks_uri it names, anonymously, and checks what
// STS relies on: HTTP 200, JSON, the discovery issuer equal to issuer byte for byte, an https
// jwks_uri and a parseable key set. Use it to check a published issuer before creating roles,
// and to verify tokens against what is really published (Verify(token, p.JWKS, ...)). client
// nil means http.DefaultClient; it must not add credentials.
func Fetch(ctx context.Context, client *http.Client, issuer string) (*Published, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if !strings.HasPrefix(issuer, "https://") {
		return nil, fmt.Errorf("%w: issuer %q is not https", ErrFetch, issuer)
	}
	p := &Published{}
	var err error
	var ctype string
	discURL := strings.TrimSuffix(issuer, "/") + DiscoveryPath
	if p.Discovery, ctype, err = get(ctx, client, discURL); err != nil {
		return nil, err
	}
	if !isMediaType(ctype, "application/json") {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s has Content-Type %q, want application/json", discURL, ctype))
	}
	var d struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(p.Discovery, &d); err != nil {
		return p, fmt.Errorf("%w: %s is not JSON: %v", ErrFetch, discURL, err)
	}
	if d.Issuer != issuer {
		return p, fmt.Errorf("%w: %s names issuer %q, want %q byte for byte (STS rejects the mismatch)", ErrFetch, discURL, d.Issuer, issuer)
	}
	if !strings.HasPrefix(d.JWKSURI, "https://") {
		return p, fmt.Errorf("%w: jwks_uri %q is not https", ErrFetch, d.JWKSURI)
	}
	p.JWKSURI = d.JWKSURI
	if p.JWKS, ctype, err = get(ctx, client, d.JWKSURI); err != nil {
		return p, err
	}
	if !isMediaType(ctype, ContentTypeJWKS) && !isMediaType(ctype, "application/json") {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s has Content-Type %q, want %s", d.JWKSURI, ctype, ContentTypeJWKS))
	}
	if _, err := NewVerifier(p.JWKS, Expect{Issuer: issuer}); err != nil {
		return p, fmt.Errorf("%w: %s: %v", ErrFetch, d.JWKSURI, err)
	}
	return p, nil
}

func isMediaType(header, want string) bool {
	mt, _, err := mime.ParseMediaType(header)
	return err == nil && mt == want
}

func get(ctx context.Context, client *http.Client, url string) (body []byte, contentType string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrFetch, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrFetch, err)
	}
	defer resp.Body.Close()
	if final := resp.Request.URL; final.Scheme != "https" {
		// STS only speaks https: a document reached over a redirect to http is not published.
		return nil, "", fmt.Errorf("%w: GET %s was redirected to %s, which is not https", ErrFetch, url, final.Redacted())
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxJWKS))
	if err != nil {
		return nil, "", fmt.Errorf("%w: reading %s: %v", ErrFetch, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("%w: GET %s: %s (STS fetches it anonymously: is it public?)", ErrFetch, url, resp.Status)
	}
	return body, resp.Header.Get("Content-Type"), nil
}
