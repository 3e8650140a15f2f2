package envtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// DefaultIssuer is the service-account issuer used when Options.Issuer is empty.
const DefaultIssuer = "https://kubernetes.default.svc.cluster.local"

// Options configure a control plane. The zero value is a working default.
type Options struct {
	// SigningKeys are the service-account keys. The first one signs new tokens; all of them verify
	// tokens and are published in the JWKS. Default: one fresh RSA-2048 key.
	SigningKeys []crypto.Signer
	// Issuer is --service-account-issuer. Default: DefaultIssuer.
	Issuer string
	// JWKSURI is --service-account-jwks-uri (optional); it sets jwks_uri in the discovery document.
	JWKSURI string
	// APIAudiences is --api-audiences. Default: the issuer.
	APIAudiences []string
	// ExtraArgs are appended to kube-apiserver's command line ("--flag=value").
	ExtraArgs []string
	// Logs, when true, copies the processes' output to the test log on failure.
	Logs bool
}

// Env is a running etcd + kube-apiserver pair.
type Env struct {
	// Config authenticates as a system:masters administrator with a client certificate.
	Config *rest.Config
	// Client is a clientset for Config.
	Client kubernetes.Interface
	// URL is the API server's https URL on loopback.
	URL string
	// CAPEM is the CA bundle that verifies the API server's serving certificate.
	CAPEM []byte
	// CAFile is CAPEM on disk.
	CAFile string
	// Issuer is the service-account issuer.
	Issuer string
	// SigningKeys are the service-account keys (first signs).
	SigningKeys []crypto.Signer

	dir      string
	bins     Binaries
	apiArgs  []string
	etcd     *process
	etcdURL  string
	mu       sync.Mutex
	api      *process
	stopOnce sync.Once
}

// process is one child with its captured output.
type process struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 4<<20 { // keep memory bounded: only the tail matters
		b.buf.Reset()
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startProcess(path string, args []string) (*process, error) {
	cmd := exec.Command(path, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *process) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// freePort returns a loopback TCP port that was free a moment ago (a variable so a test can hand
// out a taken port, as a race with another process does).
var freePort = func() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts a private control plane and stops it in t.Cleanup. It fails the test under CI and
// skips it elsewhere when the binaries are missing.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	bins := requireBinaries(t)
	dir, err := os.MkdirTemp("", "ekslink-envtest-")
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	env, err := start(bins, dir, opts)
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("envtest: starting the control plane: %v", err)
	}
	t.Cleanup(env.Stop)
	return env
}

// New starts a control plane outside a test (the demo uses it). The caller must call Stop.
func New(opts Options) (*Env, error) {
	bins, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ekslink-envtest-")
	if err != nil {
		return nil, err
	}
	env, err := start(bins, dir, opts)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return env, nil
}

func start(bins Binaries, dir string, opts Options) (env *Env, err error) {
	if len(opts.SigningKeys) == 0 {
		opts.SigningKeys = []crypto.Signer{NewRSAKey()}
	}
	if opts.Issuer == "" {
		opts.Issuer = DefaultIssuer
	}
	env = &Env{dir: dir, bins: bins, Issuer: opts.Issuer, SigningKeys: opts.SigningKeys}
	e := env
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()

	ca, err := newCA("ekslink-envtest-ca")
	if err != nil {
		return nil, err
	}
	env.CAPEM = ca.pem
	if env.CAFile, err = writeFile(dir, "ca.crt", ca.pem); err != nil {
		return nil, err
	}
	servingCert, servingKey, err := ca.issue("kube-apiserver", nil,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	adminCert, adminKey, err := ca.issue("ekslink-envtest-admin", []string{"system:masters"}, nil, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"serving.crt": servingCert, "serving.key": servingKey}
	for i, k := range opts.SigningKeys {
		priv, err := PrivateKeyPEM(k)
		if err != nil {
			return nil, fmt.Errorf("service-account key %d: %w", i, err)
		}
		pub, err := PublicKeyPEM(k.Public())
		if err != nil {
			return nil, err
		}
		files[fmt.Sprintf("sa-%d.key", i)] = priv
		files[fmt.Sprintf("sa-%d.pub", i)] = pub
	}
	for name, data := range files {
		if _, err := writeFile(dir, name, data); err != nil {
			return nil, err
		}
	}

	if err := env.startEtcd(); err != nil {
		return nil, err
	}
	etcdURL := env.etcdURL

	audiences := opts.APIAudiences
	if len(audiences) == 0 {
		audiences = []string{opts.Issuer}
	}
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--tls-cert-file=" + filepath.Join(dir, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(dir, "serving.key"),
		"--client-ca-file=" + env.CAFile,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--service-account-issuer=" + opts.Issuer,
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa-0.key"),
		"--api-audiences=" + strings.Join(audiences, ","),
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--v=0",
	}
	for i := range opts.SigningKeys {
		args = append(args, "--service-account-key-file="+filepath.Join(dir, fmt.Sprintf("sa-%d.pub", i)))
	}
	if opts.JWKSURI != "" {
		args = append(args, "--service-account-jwks-uri="+opts.JWKSURI)
	}
	args = append(args, opts.ExtraArgs...)

	// The port was free a moment ago; when another process takes it first, start again on a new
	// one (StartAPIServer itself keeps the port, as a restart must).
	for attempt := 0; ; attempt++ {
		apiPort, err := freePort()
		if err != nil {
			return nil, err
		}
		env.URL = "https://127.0.0.1:" + strconv.Itoa(apiPort)
		env.apiArgs = append(append([]string(nil), args...), "--secure-port="+strconv.Itoa(apiPort))
		env.Config = &rest.Config{
			Host:            env.URL,
			TLSClientConfig: rest.TLSClientConfig{CAData: ca.pem, CertData: adminCert, KeyData: adminKey},
			QPS:             -1, // no client-side throttling in tests
		}
		err = env.StartAPIServer()
		if err == nil {
			break
		}
		if attempt == 2 || !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
	}
	if env.Client, err = kubernetes.NewForConfig(env.Config); err != nil {
		return nil, err
	}
	return env, nil
}

func (e *Env) startEtcd() error {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		clientPort, err := freePort()
		if err != nil {
			return err
		}
		peerPort, err := freePort()
		if err != nil {
			return err
		}
		client := "http://127.0.0.1:" + strconv.Itoa(clientPort)
		peer := "http://127.0.0.1:" + strconv.Itoa(peerPort)
		p, err := startProcess(e.bins.Etcd, []string{
			"--name=default",
			"--data-dir=" + filepath.Join(e.dir, fmt.Sprintf("etcd-%d", attempt)),
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=default=" + peer,
			"--unsafe-no-fsync",
			"--log-level=error",
			"--listen-client-urls=" + client,
			"--advertise-client-urls=" + client,
		})
		if err != nil {
			return err
		}
		if err := waitHTTP(p, client+"/health", nil, 20*time.Second); err != nil {
			p.stop()
			lastErr = fmt.Errorf("etcd: %w\n%s", err, tail(p.out.String()))
			continue
		}
		e.etcd, e.etcdURL = p, client
		return nil
	}
	return lastErr
}

// StartAPIServer (re)starts kube-apiserver on the same address, keys and etcd, and waits until it
// is ready. Use it after StopAPIServer to test recovery.
func (e *Env) StartAPIServer() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.api != nil && !e.api.exited() {
		return nil
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := startProcess(e.bins.KubeAPIServer, e.apiArgs)
		if err != nil {
			return err
		}
		client, err := rest.HTTPClientFor(e.Config)
		if err != nil {
			p.stop()
			return err
		}
		if err := waitHTTP(p, e.URL+"/readyz", client, 60*time.Second); err != nil {
			p.stop()
			lastErr = fmt.Errorf("kube-apiserver: %w\n%s", err, tail(p.out.String()))
			if strings.Contains(p.out.String(), "address already in use") {
				continue
			}
			return lastErr
		}
		e.api = p
		return nil
	}
	return lastErr
}

// StopAPIServer stops kube-apiserver (etcd keeps running); StartAPIServer brings it back.
func (e *Env) StopAPIServer() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.api.stop()
}

// Stop stops everything and removes the data directory. It is safe to call more than once.
func (e *Env) Stop() {
	e.stopOnce.Do(func() {
		e.mu.Lock()
		e.api.stop()
		e.mu.Unlock()
		e.etcd.stop()
		_ = os.RemoveAll(e.dir)
	})
}

// Logs returns the tail of kube-apiserver's output, for debugging a failing test.
func (e *Env) Logs() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.api == nil {
		return ""
	}
	return tail(e.api.out.String())
}

func waitHTTP(p *process, url string, client *http.Client, timeout time.Duration) error {
	if client == nil {
		client = &http.Client{}
	}
	client.Timeout = 2 * time.Second
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("exited before it was ready")
		}
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %s", timeout, last)
}

func tail(s string) string {
	const max = 8000
	if len(s) > max {
		return "..." + s[len(s)-max:]
	}
	return s
}

// shared is the per-test-binary control plane of Shared.
var shared struct {
	once sync.Once
	env  *Env
	err  error
	skip string
}

// Shared returns a control plane shared by all tests of this test binary (default Options), started
// on first use. Call Main from TestMain so it is stopped at the end; processes are also killed when
// the test binary exits. Tests must not stop it; use Namespace to isolate their objects.
func Shared(t testing.TB) *Env {
	t.Helper()
	shared.once.Do(func() {
		bins, err := FindBinaries()
		if err != nil {
			if os.Getenv("CI") != "" {
				shared.err = fmt.Errorf("%v (CI is set, so this is a failure, not a skip)", err)
			} else {
				shared.skip = "skipping control-plane test: " + err.Error()
			}
			return
		}
		dir, err := os.MkdirTemp("", "ekslink-envtest-")
		if err != nil {
			shared.err = err
			return
		}
		shared.env, shared.err = start(bins, dir, Options{})
		if shared.err != nil {
			_ = os.RemoveAll(dir)
		}
	})
	if shared.skip != "" {
		t.Skip(shared.skip)
	}
	if shared.err != nil {
		t.Fatalf("envtest: starting the shared control plane: %v", shared.err)
	}
	return shared.env
}

// Main runs the tests and stops the shared control plane afterwards. Use it as TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.env != nil {
		shared.env.Stop()
	}
	os.Exit(code)
}

// Context returns a context bounded by the test's deadline (or one minute) and cancelled at cleanup.
func Context(t testing.TB) context.Context {
	deadline := time.Now().Add(time.Minute)
	if tt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := tt.Deadline(); ok {
			deadline = d.Add(-5 * time.Second)
		}
	}
	// One context: a first WithTimeout replaced by a second would leave its timer running.
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}
