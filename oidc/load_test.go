//go:build loadtest

package oidc_test

import (
	"crypto"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/oidc"
	"k8s.io/client-go/rest"
)

// TestLoadJWKSHandlerVsAPIServer compares serving the JWKS from oidc.Handler with kube-apiserver
// serving its own /openid/v1/jwks (the direct path), both over TLS on loopback with the same
// number of concurrent clients. ratio = our throughput / kube-apiserver's.
func TestLoadJWKSHandlerVsAPIServer(t *testing.T) {
	const issuer = "https://oidc.ekslink.example/load"
	rsaKey, ecKey := envtest.NewRSAKey(), envtest.NewECKey()
	env := envtest.Start(t, &envtest.Environment{SigningKeys: []crypto.Signer{rsaKey, ecKey}, Issuer: issuer, JWKSURI: issuer + oidc.KubeJWKSPath})
	keys, err := oidc.ParseKeys(mustPEM(t, rsaKey.Public(), ecKey.Public()))
	if err != nil {
		t.Fatal(err)
	}
	h, err := oidc.NewHandler(issuer, keys, oidc.DocumentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()

	kubeRT, err := rest.TransportFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ourRT := srv.Client().Transport.(*http.Transport).Clone()
	ourRT.MaxIdleConnsPerHost = 64

	const clients, dur = 8, 3 * time.Second
	kube := drive(t, kubeRT, env.URL+oidc.KubeJWKSPath, clients, dur)
	ours := drive(t, ourRT, srv.URL+h.JWKSPath(), clients, dur)
	t.Logf("jwks kube-apiserver: rps=%.0f p50=%s p99=%s", kube.rps, kube.p50, kube.p99)
	t.Logf("jwks oidc.Handler:   rps=%.0f p50=%s p99=%s ratio=%.2f", ours.rps, ours.p50, ours.p99, ours.rps/kube.rps)
	if ours.rps < kube.rps/2 {
		t.Errorf("oidc.Handler is much slower than kube-apiserver: ratio=%.2f", ours.rps/kube.rps)
	}
}

type loadResult struct {
	rps      float64
	p50, p99 time.Duration
}

func drive(t *testing.T, rt http.RoundTripper, url string, clients int, dur time.Duration) loadResult {
	t.Helper()
	client := &http.Client{Transport: rt}
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				start := time.Now()
				resp, err := client.Get(url)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %s", url, resp.Status)
					return
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(lat) == 0 {
		t.Fatal("no requests completed")
	}
	slices.Sort(lat)
	return loadResult{rps: float64(len(lat)) / dur.Seconds(), p50: lat[len(lat)/2], p99: lat[len(lat)*99/100]}
}
