package impersonation

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"

	"encoding/json"
	"encoding/pem"
	"fmt"
	dto "github.com/prometheus/client_model/go"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

const (
	testUserARN    = "arn:aws:iam::123456789012:user/alice"
	testSessionARN = "arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com"
)

// recordingUpstream is a TLS (HTTP/2-capable) stand-in for the API server that records what
// reaches it.
type recordingUpstream struct {
	srv     *httptest.Server
	mu      sync.Mutex
	headers []http.Header
	count   atomic.Int64
	handle  func(w http.ResponseWriter, r *http.Request)
}

func newRecordingUpstream(t testing.TB, handle func(w http.ResponseWriter, r *http.Request)) *recordingUpstream {
	t.Helper()
	return newUpstream(t, true, handle)
}

func newUpstream(t testing.TB, http2 bool, handle func(w http.ResponseWriter, r *http.Request)) *recordingUpstream {
	t.Helper()
	u := &recordingUpstream{handle: handle}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.count.Add(1)
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		if len(u.headers) > 64 { // bounded for benchmarks
			u.headers = append(u.headers[:0], u.headers[len(u.headers)-8:]...)
		}
		u.mu.Unlock()
		if u.handle != nil {
			u.handle(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Success"}`)
	}))
	u.srv.EnableHTTP2 = http2
	u.srv.StartTLS()
	t.Cleanup(u.srv.Close)
	return u
}

func (u *recordingUpstream) last(t testing.TB) http.Header {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.headers) == 0 {
		t.Fatal("no request reached the upstream")
	}
	return u.headers[len(u.headers)-1]
}

func (u *recordingUpstream) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: u.srv.Certificate().Raw})
}

// projectedDir mimics kubelet's AtomicWriter: files live in a timestamped directory, "..data"
// points at it, and each file is a symlink through "..data". Update swaps "..data" atomically.
type projectedDir struct {
	dir string
	gen int
}

func newProjectedDir(t testing.TB, files map[string]string) *projectedDir {
	t.Helper()
	p := &projectedDir{dir: t.TempDir()}
	p.update(t, files)
	return p
}

func (p *projectedDir) path(name string) string { return filepath.Join(p.dir, name) }

func (p *projectedDir) update(t testing.TB, files map[string]string) {
	t.Helper()
	p.gen++
	ts := fmt.Sprintf("..2026_11_23_10_00_%02d.%d", p.gen, time.Now().UnixNano())
	must(t, os.Mkdir(filepath.Join(p.dir, ts), 0o755))
	for name, data := range files {
		must(t, os.WriteFile(filepath.Join(p.dir, ts, name), []byte(data), 0o644))
	}
	old, _ := os.Readlink(filepath.Join(p.dir, "..data"))
	must(t, os.Symlink(ts, filepath.Join(p.dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(p.dir, "..data_tmp"), filepath.Join(p.dir, "..data")))
	for name := range files {
		link := filepath.Join(p.dir, name)
		if _, err := os.Lstat(link); err != nil {
			must(t, os.Symlink(filepath.Join("..data", name), link))
		}
	}
	if old != "" {
		must(t, os.RemoveAll(filepath.Join(p.dir, old)))
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// upstreamConfig points at u with a token file and a CA file in a projected directory.
func upstreamConfig(t testing.TB, u *recordingUpstream, token string) (*rest.Config, *projectedDir) {
	t.Helper()
	dir := newProjectedDir(t, map[string]string{"token": token, "ca.crt": string(u.caPEM())})
	return &rest.Config{
		Host:            u.srv.URL,
		BearerTokenFile: dir.path("token"),
		TLSClientConfig: rest.TLSClientConfig{CAFile: dir.path("ca.crt")},
	}, dir
}

// serveHandler starts h on a loopback HTTP server and returns its URL.
func serveHandler(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func newTestHandler(t testing.TB, cfg Config) *Handler {
	t.Helper()
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func decodeStatus(t testing.TB, resp *http.Response) metav1.Status {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var st metav1.Status
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &st); err != nil || st.Kind != "Status" {
		t.Fatalf("body is not a metav1.Status: %v: %s", err, body)
	}
	if int(st.Code) != resp.StatusCode {
		t.Errorf("Status.code = %d, HTTP status = %d", st.Code, resp.StatusCode)
	}
	return st
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue reads a counter or gauge (testutil would pull a module go.mod does not list).
func metricValue(c interface {
	Write(*dto.Metric) error
}) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// selfSignedPEM is a fresh CA certificate that signs nothing the tests serve.
func selfSignedPEM(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "unrelated-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
