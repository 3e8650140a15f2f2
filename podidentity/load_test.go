//go:build loadtest

package podidentity

import (
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"
)

// TestLoadCachedPathAgainstPlainHandler drives the agent's cached path and a plain net/http handler
// returning a fixed JSON body of the same size with 64 concurrent loopback clients, in the same run,
// alternating, and reports the throughput ratio and latency percentiles. Target ratio >= 0.7.
func TestLoadCachedPathAgainstPlainHandler(t *testing.T) {
	const clients = 64
	// Many short alternating rounds, so that load from other processes on the machine hits both
	// servers alike.
	const rounds, round = 8, 500 * time.Millisecond
	up := newUpstream(t, time.Now)
	a := startAgent(t, up.client(t, 0), ServerOptions{})
	token := makeToken(time.Now().Add(time.Hour), nil)
	first := a.get(t, token)
	if first.status != 200 {
		t.Fatal(first.raw)
	}
	body := []byte(first.raw)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer plain.Close()

	var agentStats, plainStats loadStats
	for range rounds {
		plainStats.add(drive(t, plain.URL+CredentialsPath, token, clients, round))
		agentStats.add(drive(t, a.url, token, clients, round))
	}
	ratio := agentStats.rps() / plainStats.rps()
	t.Logf("pod-identity cached path, %d clients: ratio=%.2f p50=%s p99=%s rps=%.0f | plain net/http: p50=%s p99=%s rps=%.0f",
		clients, ratio, agentStats.pct(50), agentStats.pct(99), agentStats.rps(), plainStats.pct(50), plainStats.pct(99), plainStats.rps())
	if up.calls.Load() != 1 {
		t.Errorf("%d upstream calls during the cached-path load", up.calls.Load())
	}
	if ratio < 0.5 {
		t.Errorf("ratio %.2f is far below the 0.7 target", ratio)
	}
}

type loadStats struct {
	lat     []time.Duration
	elapsed time.Duration
}

func (s *loadStats) add(o loadStats) {
	s.lat = append(s.lat, o.lat...)
	s.elapsed += o.elapsed
}

func (s *loadStats) rps() float64 { return float64(len(s.lat)) / s.elapsed.Seconds() }

func (s *loadStats) pct(p int) time.Duration {
	sort.Slice(s.lat, func(i, j int) bool { return s.lat[i] < s.lat[j] })
	if len(s.lat) == 0 {
		return 0
	}
	return s.lat[(len(s.lat)-1)*p/100].Round(time.Microsecond)
}

func drive(t *testing.T, url, token string, clients int, d time.Duration) loadStats {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var out loadStats
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			for time.Now().Before(stop) {
				t0 := time.Now()
				code, err := fetchOnce(client, url, token)
				if err != nil || code != 200 {
					t.Errorf("%s: %d %v", url, code, err)
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
