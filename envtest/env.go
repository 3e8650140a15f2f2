package envtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Defaults of an Environment's zero-valued fields.
const (
	// DefaultIssuer is the service-account issuer when Environment.Issuer is empty.
	DefaultIssuer = "https://kubernetes.default.svc.cluster.local"
	// DefaultStartTimeout is how long etcd and kube-apiserver each may take to become ready when
	// Environment.StartTimeout is zero.
	DefaultStartTimeout = 60 * time.Second
	// DefaultStopTimeout is how long a process may take to exit after SIGTERM, before it is
	// killed, when Environment.StopTimeout is zero.
	DefaultStopTimeout = 5 * time.Second
)

// Environment is a control plane on loopback: etcd and kube-apiserver with TLS, RBAC, a
// system:masters client certificate and a service-account issuer. Set the configuration fields
// (every zero value works), call Start, and Stop when done. Start fills in the fields below
// "Set by Start". An Environment starts once; StopAPIServer and StartAPIServer restart the API
// server alone.
type Environment struct {
	// BinaryAssetsDirectory is a directory holding kube-apiserver and etcd. Default: the lookup
	// of FindBinaries ($EKSLINK_TESTBIN_DIR, $KUBEBUILDER_ASSETS, the cache of hack/testbin.sh).
	BinaryAssetsDirectory string
	// SigningKeys are the service-account keys. The first one signs new tokens; all of them verify
	// tokens and are published in the JWKS. Default (set by Start): one fresh RSA-2048 key.
	SigningKeys []crypto.Signer
	// Issuer is --service-account-issuer. Default (set by Start): DefaultIssuer.
	Issuer string
	// JWKSURI is --service-account-jwks-uri (optional); it sets jwks_uri in the discovery document.
	JWKSURI string
	// APIAudiences is --api-audiences. Default: the issuer.
	APIAudiences []string
	// ExtraArgs are appended to kube-apiserver's command line ("--flag=value"). A single-valued
	// flag given here overrides the one Start sets (the last value wins); a list flag adds to it.
	ExtraArgs []string
	// StartTimeout bounds how long etcd and kube-apiserver each may take to become ready.
	// Default: DefaultStartTimeout.
	StartTimeout time.Duration
	// StopTimeout is how long each process may take to exit after SIGTERM before it is killed.
	// Default: DefaultStopTimeout.
	StopTimeout time.Duration

	// Set by Start:

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
	// Binaries are the executables that run.
	Binaries Binaries

	started  atomic.Bool
	dir      string
	apiArgs  []string
	etcd     *process
	etcdURL  string
	mu       sync.Mutex
	api      *process
	stopOnce sync.Once
	stopErr  error
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

func (p *process) stop(timeout time.Duration) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
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

// Start starts etcd and kube-apiserver and returns Config, a rest.Config for a system:masters
// administrator. When the binaries are missing the error is a *BinariesNotFoundError. On any error
// whatever was started is stopped again.
func (e *Environment) Start() (*rest.Config, error) {
	if e.started.Swap(true) {
		return nil, errors.New("envtest: Start called twice, or after Stop: an Environment starts once (StopAPIServer and StartAPIServer restart the API server)")
	}
	bins, err := e.binaries()
	if err != nil {
		return nil, err
	}
	e.Binaries = bins
	if e.dir, err = os.MkdirTemp("", "ekslink-envtest-"); err != nil {
		return nil, fmt.Errorf("envtest: %w", err)
	}
	if err := e.start(); err != nil {
		_ = e.Stop()
		return nil, fmt.Errorf("envtest: starting the control plane: %w", err)
	}
	return e.Config, nil
}

// binaries are the executables of BinaryAssetsDirectory, or those FindBinaries finds.
func (e *Environment) binaries() (Binaries, error) {
	if e.BinaryAssetsDirectory != "" {
		return binariesIn(e.BinaryAssetsDirectory, SourceField)
	}
	return FindBinaries()
}

func (e *Environment) startTimeout() time.Duration {
	if e.StartTimeout > 0 {
		return e.StartTimeout
	}
	return DefaultStartTimeout
}

func (e *Environment) stopTimeout() time.Duration {
	if e.StopTimeout > 0 {
		return e.StopTimeout
	}
	return DefaultStopTimeout
}

func (e *Environment) start() error {
	if len(e.SigningKeys) == 0 {
		e.SigningKeys = []crypto.Signer{NewRSAKey()}
	}
	if e.Issuer == "" {
		e.Issuer = DefaultIssuer
	}
	dir := e.dir
	ca, err := newCA("ekslink-envtest-ca")
	if err != nil {
		return err
	}
	e.CAPEM = ca.pem
	if e.CAFile, err = writeFile(dir, "ca.crt", ca.pem); err != nil {
		return err
	}
	servingCert, servingKey, err := ca.issue("kube-apiserver", nil,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	adminCert, adminKey, err := ca.issue("ekslink-envtest-admin", []string{"system:masters"}, nil, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return err
	}
	files := map[string][]byte{"serving.crt": servingCert, "serving.key": servingKey}
	for i, k := range e.SigningKeys {
		priv, err := PrivateKeyPEM(k)
		if err != nil {
			return fmt.Errorf("service-account key %d: %w", i, err)
		}
		pub, err := PublicKeyPEM(k.Public())
		if err != nil {
			return err
		}
		files[fmt.Sprintf("sa-%d.key", i)] = priv
		files[fmt.Sprintf("sa-%d.pub", i)] = pub
	}
	for name, data := range files {
		if _, err := writeFile(dir, name, data); err != nil {
			return err
		}
	}

	if err := e.startEtcd(); err != nil {
		return err
	}

	audiences := e.APIAudiences
	if len(audiences) == 0 {
		audiences = []string{e.Issuer}
	}
	args := []string{
		"--etcd-servers=" + e.etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--tls-cert-file=" + filepath.Join(dir, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(dir, "serving.key"),
		"--client-ca-file=" + e.CAFile,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--service-account-issuer=" + e.Issuer,
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa-0.key"),
		"--api-audiences=" + strings.Join(audiences, ","),
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--v=0",
	}
	for i := range e.SigningKeys {
		args = append(args, "--service-account-key-file="+filepath.Join(dir, fmt.Sprintf("sa-%d.pub", i)))
	}
	if e.JWKSURI != "" {
		args = append(args, "--service-account-jwks-uri="+e.JWKSURI)
	}
	args = append(args, e.ExtraArgs...)

	// The port was free a moment ago; when another process takes it first, start again on a new
	// one (StartAPIServer itself keeps the port, as a restart must).
	for attempt := 0; ; attempt++ {
		apiPort, err := freePort()
		if err != nil {
			return err
		}
		e.URL = "https://127.0.0.1:" + strconv.Itoa(apiPort)
		e.apiArgs = append(append([]string(nil), args...), "--secure-port="+strconv.Itoa(apiPort))
		e.Config = &rest.Config{
			Host:            e.URL,
			TLSClientConfig: rest.TLSClientConfig{CAData: ca.pem, CertData: adminCert, KeyData: adminKey},
			QPS:             -1, // no client-side throttling in tests
		}
		err = e.StartAPIServer()
		if err == nil {
			break
		}
		if attempt == 2 || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
	}
	e.Client, err = kubernetes.NewForConfig(e.Config)
	return err
}

func (e *Environment) startEtcd() error {
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
		p, err := startProcess(e.Binaries.Etcd, []string{
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
		if err := waitHTTP(p, client+"/health", nil, e.startTimeout()); err != nil {
			p.stop(e.stopTimeout())
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
func (e *Environment) StartAPIServer() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.api != nil && !e.api.exited() {
		return nil
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := startProcess(e.Binaries.KubeAPIServer, e.apiArgs)
		if err != nil {
			return err
		}
		client, err := rest.HTTPClientFor(e.Config)
		if err != nil {
			p.stop(e.stopTimeout())
			return err
		}
		if err := waitHTTP(p, e.URL+"/readyz", client, e.startTimeout()); err != nil {
			p.stop(e.stopTimeout())
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
func (e *Environment) StopAPIServer() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.api.stop(e.stopTimeout())
}

// Stop stops kube-apiserver and etcd and removes their data directory. It is safe to call more
// than once, and on an Environment that never started; later calls return the first one's error.
func (e *Environment) Stop() error {
	e.stopOnce.Do(func() {
		e.started.Store(true) // a Start after Stop would start processes no Stop stops
		e.mu.Lock()
		e.api.stop(e.stopTimeout())
		e.mu.Unlock()
		e.etcd.stop(e.stopTimeout())
		if e.dir != "" {
			if err := os.RemoveAll(e.dir); err != nil {
				e.stopErr = fmt.Errorf("envtest: removing the data directory: %w", err)
			}
		}
	})
	return e.stopErr
}

// Logs returns the tail of kube-apiserver's output, for debugging a failing test.
func (e *Environment) Logs() string {
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

// Start starts env (a zero Environment when env is nil) for the test t, stops it at t's cleanup,
// and returns it. When the binaries are missing it fails the test if the CI environment variable
// is set and skips it otherwise; any other error fails the test.
func Start(t testing.TB, env *Environment) *Environment {
	t.Helper()
	if env == nil {
		env = &Environment{}
	}
	if _, err := env.binaries(); err != nil {
		failOrSkip(t, err)
	}
	if _, err := env.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	return env
}

// failOrSkip fails the test under CI and skips it elsewhere, for missing binaries.
func failOrSkip(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%v (CI is set, so this is a failure, not a skip)", err)
	}
	t.Skipf("skipping control-plane test: %v", err)
}

// shared is the per-test-binary control plane of Shared.
var shared struct {
	once sync.Once
	env  *Environment
	err  error
	// missing is the error of the binary lookup, when the binaries are missing.
	missing error
}

// Shared returns a control plane shared by all tests of this test binary (a zero Environment),
// started on first use. Call Main from TestMain so it is stopped at the end; processes are also
// killed when the test binary exits. Tests must not stop it; use Namespace to isolate their
// objects. Missing binaries fail the test under CI and skip it elsewhere, as in Start.
func Shared(t testing.TB) *Environment {
	t.Helper()
	shared.once.Do(func() {
		env := &Environment{}
		if _, err := env.binaries(); err != nil {
			shared.missing = err
			return
		}
		if _, err := env.Start(); err != nil {
			shared.err = err
			return
		}
		shared.env = env
	})
	if shared.missing != nil {
		failOrSkip(t, shared.missing)
	}
	if shared.err != nil {
		t.Fatalf("envtest: the shared control plane: %v", shared.err)
	}
	return shared.env
}

// Main runs the tests and stops the shared control plane afterwards. Use it as TestMain:
//
//	func TestMain(m *testing.M) { envtest.Main(m) }
func Main(m *testing.M) {
	m.Run()
	if shared.env != nil {
		_ = shared.env.Stop()
	}
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
