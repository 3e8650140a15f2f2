package oidc

import (
	"crypto/elliptic"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// tlsIssuer serves h on a TLS listener and returns the issuer URL (with port: tests only).
func tlsIssuer(t *testing.T, path string, handler func(issuer string) http.Handler) (string, *http.Client) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "https://" + ln.Addr().String() + path
	srv := httptest.NewUnstartedServer(handler(issuer))
	srv.Listener.Close()
	srv.Listener = ln
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return issuer, srv.Client()
}

func TestFetch(t *testing.T) {
	k := must(NewKey(mustEC(t, elliptic.P256())))
	t.Run("served by Handler", func(t *testing.T) {
		issuer, client := tlsIssuer(t, "/c1", func(iss string) http.Handler {
			return must(NewHandler(iss, []Key{k}, DocumentOptions{SkipIssuerValidation: true}))
		})
		p, err := Fetch(t.Context(), client, issuer)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Warnings) != 0 || p.JWKSURI != issuer+KubeJWKSPath {
			t.Fatalf("published %+v", p)
		}
	})
	t.Run("issuer mismatch (trailing slash)", func(t *testing.T) {
		issuer, client := tlsIssuer(t, "/c1", func(iss string) http.Handler {
			return must(NewHandler(iss, []Key{k}, DocumentOptions{SkipIssuerValidation: true}))
		})
		if _, err := Fetch(t.Context(), client, issuer+"/"); !errors.Is(err, ErrFetch) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("private bucket", func(t *testing.T) {
		issuer, client := tlsIssuer(t, "/c1", func(string) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "AccessDenied", http.StatusForbidden) })
		})
		if _, err := Fetch(t.Context(), client, issuer); !errors.Is(err, ErrFetch) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a redirect to http is not published", func(t *testing.T) {
		var inner *Handler
		// The plain-http server answers with exactly what the issuer would serve.
		plain := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, jwks := inner.Documents()
			w.Header().Set("Content-Type", ContentTypeJWKS)
			_, _ = w.Write(jwks)
		}))
		issuer, client := tlsIssuer(t, "/c1", func(iss string) http.Handler {
			inner = must(NewHandler(iss, []Key{k}, DocumentOptions{SkipIssuerValidation: true, JWKSURI: iss + "/keys"}))
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/c1/keys" {
					http.Redirect(w, r, plain.URL+"/c1/keys", http.StatusFound)
					return
				}
				inner.ServeHTTP(w, r)
			})
		})
		plain.Start()
		t.Cleanup(plain.Close)
		if _, err := Fetch(t.Context(), client, issuer); !errors.Is(err, ErrFetch) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wrong content type is a warning", func(t *testing.T) {
		issuer, client := tlsIssuer(t, "/c1", func(iss string) http.Handler {
			h := must(NewHandler(iss, []Key{k}, DocumentOptions{SkipIssuerValidation: true}))
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				disc, jwks := h.Documents()
				w.Header().Set("Content-Type", "binary/octet-stream") // what an S3 upload without --content-type gets
				if r.URL.Path == h.DiscoveryPath() {
					_, _ = w.Write(disc)
				} else {
					_, _ = w.Write(jwks)
				}
			})
		})
		p, err := Fetch(t.Context(), client, issuer)
		if err != nil || len(p.Warnings) != 2 {
			t.Fatalf("err %v warnings %q", err, p.Warnings)
		}
	})
}
