//go:build loadtest

package webidentity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/podidentity/association"
)

// TestLoadCachedPathVersusBare drives the agent with the web identity backend (the real API
// server's pod-bound tokens, STS web identity through awsfake) on its cached path and a bare
// net/http handler answering the same body, with 64 concurrent loopback clients, in the same run,
// in alternating short rounds (so load from other processes hits both alike). The 64 clients use
// the tokens of 16 pods of one associated service account: however many pods and requests, STS
// is called once for the service account and role. Goal: ratio >= 0.9.
func TestLoadCachedPathVersusBare(t *testing.T) {
	const clients, pods = 64, 16
	const rounds, round = 8, 500 * time.Millisecond
	w := newWorld(t)
	w.associate(t, "app")
	tokens := make([]string, pods)
	for i := range tokens {
		_, tokens[i] = w.pod(t, fmt.Sprintf("app-%d", i), "app")
	}
	var body []byte
	for _, tok := range tokens {
		code, b := get(t, http.DefaultClient, w.agent, tok)
		if code != 200 {
			t.Fatalf("warm-up: %d %s", code, b)
		}
		body = b
	}
	if calls := w.aws.WebIdentityCalls(); calls != 1 {
		t.Fatalf("%d pods of one service account made %d AssumeRoleWithWebIdentity calls, want 1", pods, calls)
	}
	bare := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write(body)
	}))
	defer bare.Close()

	var agent, plain stats
	for range rounds {
		plain.add(drive(t, bare.URL, tokens, clients, round))
		agent.add(drive(t, w.agent, tokens, clients, round))
	}
	ratio := agent.rps() / plain.rps()
	t.Logf("LOAD web identity cached path: throughput=%.0f req/s p50=%s p99=%s | bare net/http: throughput=%.0f req/s p50=%s p99=%s",
		agent.rps(), agent.pct(50), agent.pct(99), plain.rps(), plain.pct(50), plain.pct(99))
	t.Logf("LOAD ratio=%.3f goodput vs the bare handler (%d clients, %d pods' tokens, %d requests; goal: ratio>=0.9), added p99=%s",
		ratio, clients, pods, len(agent.lat), agent.pct(99)-plain.pct(99))
	calls := w.aws.WebIdentityCalls()
	t.Logf("LOAD upstream: %d STS AssumeRoleWithWebIdentity call for %d pods of one service account and role and %d requests", calls, pods, len(agent.lat)+pods)
	if calls != 1 {
		t.Errorf("%d STS calls during the cached-path load, want 1", calls)
	}
	if ratio < 0.5 {
		t.Errorf("ratio %.2f is far below the 0.9 goal", ratio)
	}
}

// TestLoadMemoryWith10000Associations measures the heap an agent's association Index (informer
// copy included) holds for 10,000 associations written in one ConfigMap on the real API server,
// with role ARNs of 65 characters.
func TestLoadMemoryWith10000Associations(t *testing.T) {
	const count = 10000
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	data := make(map[string]string, count)
	for i := range count {
		v, _ := json.Marshal(map[string]string{"roleArn": fmt.Sprintf("arn:aws:iam::111122223333:role/team-%04d/application-role-%08d", i%1000, i)})
		data[association.Key(fmt.Sprintf("team-%04d", i%1000), fmt.Sprintf("service-account-%05d", i))] = string(v)
	}
	opts := association.Options{Namespace: ns}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: association.DefaultName}, Data: data}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	data = nil
	before := heapInuse()
	ix := association.NewIndex(env.Client, association.IndexOptions{Options: opts})
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ix.Run(rctx) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := ix.WaitForSync(wctx); err != nil {
		t.Fatal(err)
	}
	for ix.Len() != count {
		if wctx.Err() != nil {
			t.Fatalf("index has %d associations, want %d", ix.Len(), count)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t0 := time.Now()
	const lookups = 1000000
	for i := range lookups {
		if _, ok := ix.Lookup(fmt.Sprintf("team-%04d", i%1000), "service-account-00000"); ok != (i%1000 == 0) {
			t.Fatalf("lookup %d", i)
		}
	}
	perLookup := time.Since(t0) / lookups
	after := heapInuse()
	runtime.KeepAlive(ix)
	t.Logf("LOAD memory: the association Index of %d associations holds %.1f MiB of heap (%d B per association, informer copy included); Lookup %s (incl. building the key)",
		count, float64(after-before)/(1<<20), (after-before)/count, perLookup)
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

type stats struct {
	lat     []time.Duration
	elapsed time.Duration
}

func (s *stats) add(o stats) { s.lat = append(s.lat, o.lat...); s.elapsed += o.elapsed }

func (s *stats) rps() float64 { return float64(len(s.lat)) / s.elapsed.Seconds() }

func (s *stats) pct(p int) time.Duration {
	sort.Slice(s.lat, func(i, j int) bool { return s.lat[i] < s.lat[j] })
	if len(s.lat) == 0 {
		return 0
	}
	return s.lat[(len(s.lat)-1)*p/100].Round(time.Microsecond)
}

// drive runs clients concurrent loops of GETs for d, client i with tokens[i%len(tokens)].
func drive(t *testing.T, url string, tokens []string, clients int, d time.Duration) stats {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var out stats
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := tokens[i%len(tokens)]
			lat := make([]time.Duration, 0, 4096)
			for time.Now().Before(stop) {
				t0 := time.Now()
				if code, b := get(t, client, url, tok); code != 200 {
					t.Errorf("%s: %d %s", url, code, b)
					return
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			out.lat = append(out.lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}

func get(t *testing.T, client *http.Client, url, token string) (int, []byte) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	req.Header.Set("Authorization", token)
	resp, err := client.Do(req)
	if err != nil {
		return -1, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
