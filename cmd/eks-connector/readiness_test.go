package main

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
)

// fakeClock is a settable clock for the cache window.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func TestReadyCacheSharesOneCheckPerWindow(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	c := newReadyCache("api server", func(ctx context.Context) error {
		calls.Add(1)
		select {
		case <-release:
			return errors.New("dial tcp 10.0.0.1:443: connection refused")
		case <-ctx.Done():
			return ctx.Err()
		}
	}, logr.Discard())
	c.now = clock.Now

	// 50 concurrent callers, one of which gives up early: all others still get the shared answer.
	giveUp, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		ctx := context.Background()
		if i == 0 {
			ctx = giveUp
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs <- c.get(ctx) }()
	}
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	close(release)
	wg.Wait()
	close(errs)
	shared := 0
	for err := range errs {
		if err != nil && strings.Contains(err.Error(), "connection refused") {
			shared++
		}
	}
	if shared < 49 {
		t.Errorf("%d callers got the shared result, want at least 49", shared)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d checks for 50 concurrent callers, want 1", n)
	}

	clock.Add(readyCacheTTL - time.Millisecond)
	if err := c.get(context.Background()); err == nil {
		t.Fatal("cached failure lost within the window")
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d checks within the window, want 1", n)
	}
	clock.Add(time.Millisecond)
	go func() { _ = c.get(context.Background()) }()
	for calls.Load() != 2 {
		time.Sleep(time.Millisecond)
	}
}

// countingAPIServer is a stand-in API server whose /readyz takes a while and counts its calls.
func countingAPIServer(t *testing.T, delay time.Duration) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			calls.Add(1)
			time.Sleep(delay)
			_, _ = io.WriteString(w, "ok")
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(api.Close)
	return api, &calls
}

// startProxyHealth runs "proxy" in-process in front of api with its probes on loopback and returns
// the health address and the proxy's logs. ttl, when set, replaces the readiness cache window.
func startProxyHealth(t *testing.T, api *httptest.Server, ttl time.Duration) (string, *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "token"), []byte("proxy-token"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw}), 0o600))
	logs := &syncBuffer{}
	health := make(chan string, 1)
	cmd := newProxyCommandWithHooks(proxyHooks{stderr: logs, readyCacheTTL: ttl, listening: func(name string, a net.Addr) {
		if name == "health" {
			health <- a.String()
		}
	}})
	cmd.SetArgs([]string{
		"--listen=unix://" + filepath.Join(dir, "connector.sock"),
		"--api-server=" + api.URL,
		"--token-file=" + filepath.Join(dir, "token"),
		"--ca-file=" + filepath.Join(dir, "ca.crt"),
		"--metrics-addr=", "--health-addr=127.0.0.1:0",
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case a := <-health:
		return "http://" + a, logs
	case err := <-done:
		t.Fatalf("proxy exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not start")
	}
	return "", nil
}

// /readyz can be reached by more than the kubelet; each hit used to make an API call with the
// proxy's token. Now a burst shares one call, and later hits within the window reuse it.
func TestReadyzMakesAtMostOneAPICallPerWindow(t *testing.T) {
	api, calls := countingAPIServer(t, 200*time.Millisecond)
	// A window long enough that a slow machine finishes the 60 hits inside it; the window itself
	// is TestReadyCacheSharesOneCheckPerWindow's subject.
	window := time.Minute
	health, _ := startProxyHealth(t, api, window)
	var wg sync.WaitGroup
	codes := make(chan int, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(health + "/readyz")
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Errorf("/readyz answered %d, want 200", code)
		}
	}
	for i := 0; i < 10; i++ {
		if code, _ := httpGet(t, health+"/readyz"); code != http.StatusOK {
			t.Errorf("/readyz answered %d", code)
		}
	}
	if n := calls.Load(); n > 1 {
		t.Fatalf("60 /readyz hits within %s made %d API server calls, want at most 1", window, n)
	}
}

// The answer says what is not ready; the upstream error (addresses, TLS and dial errors) is
// logged, never served.
func TestReadyzAnswersAShortReasonAndLogsTheDetail(t *testing.T) {
	api, _ := countingAPIServer(t, 0)
	addr := api.Listener.Addr().String()
	health, logs := startProxyHealth(t, api, 0)
	api.Close() // the API server goes away: dials are refused
	code, body := httpGet(t, health+"/readyz")
	if code != http.StatusServiceUnavailable || body != "not ready: api server\n" {
		t.Fatalf("/readyz = %d %q, want 503 %q", code, body, "not ready: api server\n")
	}
	for _, leak := range []string{addr, "dial", "refused", "tcp"} {
		if strings.Contains(body, leak) {
			t.Errorf("/readyz body %q carries upstream error text %q", body, leak)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "readiness check failed") || !strings.Contains(logs.String(), addr) {
		if time.Now().After(deadline) {
			t.Fatalf("the detail was not logged:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Probes bound to "[$(POD_IP)]:port" with POD_IP unset would listen on every interface: refused.
func TestEmptyProbeHostIsRefused(t *testing.T) {
	cmd := newProxyCommandWithHooks(proxyHooks{stderr: io.Discard})
	cmd.SetArgs([]string{"--listen=unix://" + filepath.Join(t.TempDir(), "s.sock"), "--api-server=https://127.0.0.1:1", "--metrics-addr=", "--health-addr=[]:0"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cmd.ExecuteContext(ctx); err == nil || !strings.Contains(err.Error(), "POD_IP") {
		t.Fatalf("--health-addr=[]:0: %v, want a refusal naming POD_IP", err)
	}
}

// The standalone sync's /metrics listens on loopback unless told otherwise, as the proxy's does.
func TestSyncMetricsDefaultToLoopback(t *testing.T) {
	for _, cmd := range []*cobra.Command{newSyncCommand(), newProxyCommandWithHooks(proxyHooks{})} {
		addr := cmd.Flags().Lookup("metrics-addr")
		if addr == nil {
			t.Fatalf("%s has no --metrics-addr", cmd.Name())
		}
		host, _, err := net.SplitHostPort(addr.DefValue)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			t.Errorf("%s --metrics-addr defaults to %q, want a loopback address", cmd.Name(), addr.DefValue)
		}
	}
	sync := newSyncCommand()
	if m, h := sync.Flags().Lookup("metrics-addr").DefValue, sync.Flags().Lookup("health-addr").DefValue; m == h {
		t.Errorf("sync serves /metrics with the probes by default (%s)", m)
	}
}
