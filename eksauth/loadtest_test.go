//go:build loadtest

package eksauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/eksauth"
)

// TestLoadRefreshingTransport compares client-go requests authenticated by the library's
// refreshing transport with the same requests carrying a static bearer token (the direct path),
// in the same run, against the same local server.
func TestLoadRefreshingTransport(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}`))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	gen := generator(t, "us-west-2", staticCreds(aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", SessionToken: "t"}), eksauth.TokenOptions{})
	tok, err := gen.Token(context.Background(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	base := func() *rest.Config {
		return &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: -1}
	}
	direct := base()
	direct.BearerToken = tok.Value
	ours := base()
	eksauth.ConfigureREST(ours, eksauth.NewTokenSource(gen, "prod", eksauth.TokenSourceOptions{}))

	const workers, perWorker = 8, 400
	run := func(cfg *rest.Config) (time.Duration, []time.Duration) {
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		_, _ = client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}) // warm up the connection
		lat := make([][]time.Duration, workers)
		var wg sync.WaitGroup
		start := time.Now()
		for w := range workers {
			wg.Go(func() {
				for range perWorker {
					t0 := time.Now()
					if _, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil {
						t.Error(err)
						return
					}
					lat[w] = append(lat[w], time.Since(t0))
				}
			})
		}
		wg.Wait()
		return time.Since(start), slices.Concat(lat...)
	}
	pct := func(l []time.Duration, p float64) time.Duration {
		slices.Sort(l)
		return l[int(float64(len(l)-1)*p)]
	}
	// Alternate to spread machine noise over both paths.
	var dDirect, dOurs time.Duration
	var lDirect, lOurs []time.Duration
	for range 2 {
		d, l := run(direct)
		dDirect += d
		lDirect = append(lDirect, l...)
		d, l = run(ours)
		dOurs += d
		lOurs = append(lOurs, l...)
	}
	n := float64(2 * workers * perWorker)
	ratio := (n / dOurs.Seconds()) / (n / dDirect.Seconds())
	t.Logf("LOAD refreshing-transport vs static-token: ratio=%.2f throughput=%.0f/s direct=%.0f/s p50=%s p99=%s direct_p50=%s direct_p99=%s",
		ratio, n/dOurs.Seconds(), n/dDirect.Seconds(), pct(lOurs, 0.5), pct(lOurs, 0.99), pct(lDirect, 0.5), pct(lDirect, 0.99))
	if ratio < 0.7 {
		t.Errorf("the refreshing transport costs more than 30%% of throughput: ratio=%.2f", ratio)
	}
}

// TestLoadTokenGeneration measures how many tokens per second one generator makes (each is also
// self-validated), with concurrent callers.
func TestLoadTokenGeneration(t *testing.T) {
	gen := generator(t, "eu-west-1", staticCreds(aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", SessionToken: "t"}), eksauth.TokenOptions{})
	const workers, perWorker = 4, 2000
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for range perWorker {
				t0 := time.Now()
				if _, err := gen.Token(context.Background(), "prod"); err != nil {
					t.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	t.Logf("LOAD token generation: throughput=%.0f/s p50=%s p99=%s", float64(workers*perWorker)/d.Seconds(), all[len(all)/2], all[len(all)*99/100])
}
