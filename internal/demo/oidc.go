package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/oidc"
)

// OIDC builds the self-hosted IRSA documents from the control plane's signing key, compares them
// with what kube-apiserver serves, and verifies a real service-account token against them.
func (d *Demo) OIDC(ctx context.Context) error {
	d.t.heading("Self-hosted IRSA: OIDC documents from the cluster's key, a real token verified")
	pubPEM, err := envtest.PublicKeyPEM(d.Env.SigningKeys[0].Public())
	if err != nil {
		return err
	}
	keys, err := oidc.ParseKeys(pubPEM)
	if err != nil {
		return err
	}
	discovery, jwks, err := oidc.Documents(d.Env.Issuer, keys, oidc.DocumentOptions{JWKSURI: jwksURI})
	if err != nil {
		return err
	}
	d.oidcKeys, d.oidcDiscovery, d.oidcJWKS = keys, discovery, jwks
	d.t.call("oidc.Documents(%q, 1 RSA key)", d.Env.Issuer)
	client, err := rest.HTTPClientFor(d.Env.Config)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		path string
		ours []byte
	}{{"/.well-known/openid-configuration", discovery}, {"/openid/v1/jwks", jwks}} {
		served, err := get(ctx, client, d.Env.URL+c.path)
		if err != nil {
			return err
		}
		if !bytes.Equal(served, c.ours) {
			return fmt.Errorf("%s differs from kube-apiserver's:\n ours:   %s\n served: %s", c.path, c.ours, served)
		}
		d.t.got("%s: %d bytes, byte-identical to kube-apiserver's", c.path, len(c.ours))
	}

	token, err := d.Env.TokenRequest(ctx, PodNamespace, PodSA, []string{oidc.DefaultAudience}, 10*time.Minute)
	if err != nil {
		return err
	}
	claims, err := oidc.Verify(token, jwks, oidc.Expect{Issuer: d.Env.Issuer, Audience: oidc.DefaultAudience})
	if err != nil {
		return fmt.Errorf("verifying a real service-account token: %w", err)
	}
	d.t.call("TokenRequest %s/%s audience %s, then oidc.Verify", PodNamespace, PodSA, oidc.DefaultAudience)
	d.t.got("valid: sub=%s kid=%s alg=%s", claims.Subject, claims.KeyID, claims.Algorithm)

	tampered := tamperPayload(token)
	if _, err := oidc.Verify(tampered, jwks, oidc.Expect{Issuer: d.Env.Issuer}); err == nil {
		return errors.New("a tampered token verified")
	} else {
		d.t.got("tampered payload: %v", err)
	}
	if _, err := oidc.Verify(token, jwks, oidc.Expect{Issuer: d.Env.Issuer, Audience: "someone-else"}); err == nil {
		return errors.New("a token for another audience verified")
	} else {
		d.t.got("wrong audience: %v", err)
	}
	d.t.ok("the documents an S3 bucket would serve match the cluster's, and its tokens verify against them")
	return nil
}

func get(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}

// tamperPayload changes one character in the middle of a JWT's payload (always to a different
// one, so the result never equals the token).
func tamperPayload(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(parts[1]) == 0 {
		return token + "x"
	}
	p := []byte(parts[1])
	i := len(p) / 2
	if p[i] == 'A' {
		p[i] = 'B'
	} else {
		p[i] = 'A'
	}
	return parts[0] + "." + string(p) + "." + parts[2]
}
