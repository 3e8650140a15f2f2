//go:build loadtest

package webhook

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ekslink/ekslink/envtest"
)

type latencies []time.Duration

func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	return l[int(float64(len(l)-1)*p)]
}

// loadPhase accumulates one server's rounds.
type loadPhase struct {
	name     string
	do       func() error
	requests int
	elapsed  time.Duration
	cpu      time.Duration
	lat      latencies
	roundRPS []float64
}

func (ph *loadPhase) run(t *testing.T, workers int, d time.Duration) {
	var mu sync.Mutex
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	cpu0 := selfCPU(t)
	start := time.Now()
	stop := start.Add(d)
	n := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine latencies
			for time.Now().Before(stop) {
				t0 := time.Now()
				if err := ph.do(); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			ph.lat = append(ph.lat, mine...)
			n += len(mine)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	ph.cpu += selfCPU(t) - cpu0
	if f := failed.Load(); f > 0 {
		t.Fatalf("%s: %d requests failed, first: %v", ph.name, f, firstErr.Load())
	}
	ph.requests += n
	ph.elapsed += el
	ph.roundRPS = append(ph.roundRPS, float64(n)/el.Seconds())
}

func (ph *loadPhase) rps() float64 { return float64(ph.requests) / ph.elapsed.Seconds() }

func (ph *loadPhase) cpuPerRequest() time.Duration {
	return ph.cpu / time.Duration(max(ph.requests, 1))
}

// selfCPU is this process's user+system CPU time (/proc/self/stat, proc(5); 100 ticks a second).
func selfCPU(t *testing.T) time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond
}

// TestLoadAdmissionThroughputVersusBare compares, at 64 concurrent clients and interleaved in the
// same run, the Handler admitting an IRSA pod (service account from the informer cache, the
// mutation, the JSON patch) with a bare net/http handler that decodes the same AdmissionReview and
// allows it. The body is the one the real API server sends for that pod; both servers are
// httptest TLS servers with HTTP/2, as the API server's webhook client speaks it
// (k8s.io/apiserver pkg/util/webhook: rest.TransportFor). Clients and servers share this process,
// so CPU per request (whose difference is the handler's own cost) is reported besides throughput.
func TestLoadAdmissionThroughputVersusBare(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := envtest.Context(t)
	createSA(t, env, ns, "web", map[string]string{"eks.amazonaws.com/role-arn": testARN})
	body := captureReview(t, env, ns, loadPod(ns, "web"))

	h, err := NewHandler(env.Client, Config{Region: "us-west-2", RegionalSTS: true}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(MutatePath, h)
	serve := func(handler http.Handler) (*httptest.Server, *http.Client) {
		srv := httptest.NewUnstartedServer(handler)
		srv.EnableHTTP2 = true
		srv.StartTLS()
		t.Cleanup(srv.Close)
		c := srv.Client()
		c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
		return srv, c
	}
	oursSrv, oursClient := serve(mux)
	bareSrv, bareClient := serve(http.HandlerFunc(bareAllow))
	post := func(c *http.Client, url string, wantPatch bool) func() error {
		return func() error {
			resp, err := c.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				return err
			}
			out, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d: %s", resp.StatusCode, out)
			}
			if wantPatch != bytes.Contains(out, []byte(`"patch"`)) {
				return fmt.Errorf("patch expected %v, got %s", wantPatch, out)
			}
			return nil
		}
	}
	ours := &loadPhase{name: "webhook Handler (IRSA patch)", do: post(oursClient, oursSrv.URL+MutatePath, true)}
	bare := &loadPhase{name: "bare decode+allow", do: post(bareClient, bareSrv.URL+"/", false)}
	for _, ph := range []*loadPhase{ours, bare} {
		if err := ph.do(); err != nil { // warm connections, and check the answers
			t.Fatal(err)
		}
	}
	const workers, phase, rounds = 64, 2 * time.Second, 3
	for range rounds { // interleaved, so drift in machine load hits both
		for _, ph := range []*loadPhase{bare, ours} {
			ph.run(t, workers, phase)
		}
	}
	for _, ph := range []*loadPhase{bare, ours} {
		t.Logf("LOAD %-30s throughput=%.0f req/s p50=%s p99=%s CPU per request (clients+server) %s",
			ph.name, ph.rps(), ph.lat.pct(.5), ph.lat.pct(.99), ph.cpuPerRequest().Round(time.Microsecond))
	}
	var perRound []string
	for i := range ours.roundRPS {
		perRound = append(perRound, fmt.Sprintf("%.2f", ours.roundRPS[i]/bare.roundRPS[i]))
	}
	t.Logf("LOAD ratio=%.3f throughput vs the bare handler (rounds %s), added p50=%s p99=%s (%d clients, %d-byte AdmissionReview; goal: ratio>=0.8, added p99<=2ms)",
		ours.rps()/bare.rps(), strings.Join(perRound, "/"), ours.lat.pct(.5)-bare.lat.pct(.5), ours.lat.pct(.99)-bare.lat.pct(.99), workers, len(body))
	t.Logf("LOAD CPU-bound ratio=%.3f (bare CPU per request / the Handler's); the Handler adds %s of CPU per admission",
		float64(bare.cpuPerRequest())/float64(ours.cpuPerRequest()), (ours.cpuPerRequest() - bare.cpuPerRequest()).Round(time.Microsecond))
}

// TestLoadMemoryWith10000ServiceAccounts creates 10,000 annotated service accounts through the
// real API server (with a kubectl last-applied-configuration annotation each, as applied ones
// carry), then measures (1) the heap the Handler's informer cache holds in this process, and (2)
// the resident memory of the real pod-identity-webhook binary, run out of cluster against the same
// API server, before and after the service accounts exist.
func TestLoadMemoryWith10000ServiceAccounts(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	bin := buildWebhookBinary(t)
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: env.URL, CertificateAuthorityData: env.CAPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	cfg.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	cert := envtest.NewServingCert(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, cert.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, cert.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	type memory struct{ rss, anon, file, heap uint64 }
	binaryRSS := func() (m memory) {
		port, metricsPort := freeTCPPort(t), freeTCPPort(t)
		cmd := exec.Command(bin, "--in-cluster=false", "--kubeconfig="+kubeconfig, "--tls-cert="+certFile, "--tls-key="+keyFile,
			"--port="+strconv.Itoa(port), "--metrics-port="+strconv.Itoa(metricsPort))
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		metricsURL := "http://127.0.0.1:" + strconv.Itoa(metricsPort)
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := http.Get(metricsURL + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the webhook is not ready after 60s: %v\n%s", err, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Let the informer's initial list garbage be collected, as it is in a long-running process.
		time.Sleep(3 * time.Second)
		resp, err := http.Get(metricsURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				m.heap = uint64(f)
			}
		}
		m.rss, m.anon, m.file = rss(t, cmd.Process.Pid)
		return m
	}
	before0 := binaryRSS()

	ns := env.Namespace(t)
	const count, workers = 10000, 32
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= count {
					return
				}
				name := fmt.Sprintf("app-%05d", i)
				applied := fmt.Sprintf(`{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"annotations":{"eks.amazonaws.com/role-arn":"arn:aws:iam::111122223333:role/app-%05d"},"name":"%s","namespace":"%s"}}`, i, name, ns)
				_, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name,
					Labels: map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "kubectl"},
					Annotations: map[string]string{
						"eks.amazonaws.com/role-arn":                       fmt.Sprintf("arn:aws:iam::111122223333:role/app-%05d", i),
						"eks.amazonaws.com/sts-regional-endpoints":         "true",
						"kubectl.kubernetes.io/last-applied-configuration": applied,
					}}}, metav1.CreateOptions{})
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	t.Logf("LOAD created %d service accounts through the real API server in %s", count, time.Since(start).Round(time.Millisecond))

	before := heapInuse()
	h, err := NewHandler(env.Client, Config{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := h.Start(hctx); err != nil {
		t.Fatal(err)
	}
	sas, err := (*h.saCache.Load()).ByIndex(cache.NamespaceIndex, ns)
	if err != nil || len(sas) != count {
		t.Fatalf("the cache holds %d service accounts of %s (%v), want %d", len(sas), ns, err, count)
	}
	cacheHeap := heapInuse() - before
	runtime.KeepAlive(h)
	after := binaryRSS()
	mb := func(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }
	t.Logf("LOAD memory: the informer cache of %d service accounts holds %s of heap in this process (%s per service account)", count, mb(cacheHeap), fmt.Sprintf("%d B", cacheHeap/count))
	t.Logf("LOAD memory: pod-identity-webhook binary RSS %s (anonymous %s, file-backed %s) with %d service accounts cached, heap in use %s; RSS %s (anonymous %s, file-backed %s) before they existed, heap %s (goal: <= 40 MB RSS)",
		mb(after.rss), mb(after.anon), mb(after.file), count, mb(after.heap), mb(before0.rss), mb(before0.anon), mb(before0.file), mb(before0.heap))
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// rss reads a process's resident set size, and its anonymous and file-backed parts (the binary's
// mapped code), from /proc/<pid>/status (proc(5)).
func rss(t *testing.T, pid int) (total, anon, file uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	kb := func(v string) uint64 {
		n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		return n << 10
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		switch k {
		case "VmRSS":
			total = kb(v)
		case "RssAnon":
			anon = kb(v)
		case "RssFile":
			file = kb(v)
		}
	}
	if total == 0 {
		t.Fatalf("no VmRSS in /proc/%d/status", pid)
	}
	return total, anon, file
}

func buildWebhookBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pod-identity-webhook")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/pod-identity-webhook")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the binary: %v\n%s", err, out)
	}
	return bin
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
