package main

import (
	"bufio"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
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
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/internal/cli"
)

type runningProxy struct {
	socket string
	addrs  map[string]string
	cancel context.CancelFunc
	done   chan error
	client *http.Client
}

// run executes cmd in the background until p.cancel and waits until ready is closed.
func (p *runningProxy) run(t *testing.T, cmd *cobra.Command, ready <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- cmd.ExecuteContext(ctx) }()
	select {
	case <-ready:
	case err := <-p.done:
		t.Fatalf("proxy exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not start listening")
	}
}

// startProxyCommand runs "proxy" in-process against env, as the cobra command a pod would run.
func startProxyCommand(t *testing.T, env *envtest.Environment, ns string, hooks proxyHooks, extraArgs ...string) *runningProxy {
	t.Helper()
	dir := t.TempDir()
	token := env.Token(t, ns, "eks-connector", nil, time.Hour)
	must(t, os.WriteFile(filepath.Join(dir, "token"), []byte(token), 0o600))
	p := &runningProxy{socket: filepath.Join(dir, "connector.sock"), addrs: map[string]string{}, done: make(chan error, 1)}
	var mu sync.Mutex
	ready := make(chan struct{})
	hooks.listening = func(name string, addr net.Addr) {
		mu.Lock()
		defer mu.Unlock()
		p.addrs[name] = addr.String()
		if len(p.addrs) == 3 {
			close(ready)
		}
	}
	logs := &syncBuffer{}
	hooks.stderr = logs
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("proxy logs:\n%s", logs.String())
		}
	})
	cmd := newProxyCommandWithHooks(hooks)
	cmd.SetArgs(append([]string{
		"--listen=unix://" + p.socket,
		"--api-server=" + env.URL,
		"--token-file=" + filepath.Join(dir, "token"),
		"--metrics-addr=127.0.0.1:0",
		"--health-addr=127.0.0.1:0",
		"--shutdown-timeout=5s",
	}, extraArgs...))
	t.Setenv("CONNECTOR_CA_FILE", env.CAFile) // the env fallback, exercised
	p.run(t, cmd, ready)
	t.Cleanup(func() { p.cancel(); <-p.done })
	p.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", p.socket)
	}}}
	return p
}

func (p *runningProxy) stop(t *testing.T) error {
	t.Helper()
	p.cancel()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not stop")
		return nil
	}
}

func (p *runningProxy) get(t *testing.T, path, arn string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://connector"+path, nil)
	if arn != "" {
		req.Header.Set("x-aws-eks-identity-arn", arn)
	}
	resp, err := p.client.Do(req)
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestProxyCommandServesTheConnectorSocket(t *testing.T) {
	env := envtest.Start(t, &envtest.Environment{})
	ns := env.Namespace(t)
	arn := "arn:aws:iam::123456789012:role/console-viewer"
	env.CreateServiceAccount(t, ns, "eks-connector")
	// Impersonate on users, for this ARN only: the RBAC AWS documents for the connector. No
	// userextras grant: the proxy sends Impersonate-User alone by default.
	env.Grant(t, "", ns+"-impersonator", envtest.ServiceAccountSubject(ns, "eks-connector"), []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: []string{arn}},
	})
	env.Grant(t, ns, "viewer", envtest.UserSubject(arn), []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}},
	})
	_, err := env.Client.CoreV1().ConfigMaps(ns).Create(envtest.Context(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{})
	must(t, err)

	// A socket left behind by a crashed predecessor.
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	must(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()

	var background sync.WaitGroup
	background.Add(1)
	var backgroundReady atomic.Bool
	p := startProxyCommand(t, env, ns, proxyHooks{
		extraReadyChecks: []func() error{func() error { return nil }},
		startBackground: func(ctx context.Context, _ logr.Logger, reg prometheus.Registerer) (func() error, error) {
			reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "background_test_total", Help: "test"}))
			go func() {
				defer background.Done()
				<-ctx.Done()
			}()
			return func() error {
				if !backgroundReady.Load() {
					return errors.New("background not ready")
				}
				return nil
			}, nil
		},
	})

	t.Run("socket is 0660 or tighter", func(t *testing.T) {
		fi, err := os.Stat(p.socket)
		must(t, err)
		if fi.Mode().Perm()&^0o660 != 0 {
			t.Fatalf("mode %v", fi.Mode().Perm())
		}
	})
	t.Run("allowed ARN reads through the socket", func(t *testing.T) {
		code, body := p.get(t, "/api/v1/namespaces/"+ns+"/configmaps/cm", arn)
		if code != 200 || !strings.Contains(body, `"name":"cm"`) {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("missing identity is refused", func(t *testing.T) {
		code, body := p.get(t, "/api/v1/namespaces/"+ns+"/configmaps/cm", "")
		if code != 401 || !strings.Contains(body, `"kind":"Status"`) {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("probes and metrics", func(t *testing.T) {
		if code, _ := httpGet(t, "http://"+p.addrs["health"]+"/healthz"); code != 200 {
			t.Errorf("/healthz %d", code)
		}
		if code, body := httpGet(t, "http://"+p.addrs["health"]+"/readyz"); code != 503 || body != "not ready: background work\n" {
			t.Errorf("/readyz with the background hook unready: %d %s", code, body)
		}
		backgroundReady.Store(true)
		if code, body := httpGet(t, "http://"+p.addrs["health"]+"/readyz"); code != 200 {
			t.Errorf("/readyz %d %s", code, body)
		}
		code, body := httpGet(t, "http://"+p.addrs["metrics"]+"/metrics")
		for _, want := range []string{
			`ekslink_impersonation_requests_total{code="200",kind="request"} 1`,
			`ekslink_impersonation_requests_total{code="401",kind="request"} 1`,
			`ekslink_impersonation_request_duration_seconds_bucket`,
			`ekslink_impersonation_rejected_identities_total{reason="missing"} 1`,
			`go_goroutines`,
			`background_test_total 0`,
		} {
			if code != 200 || !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
	t.Run("shutdown drains an in-flight watch", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://connector/api/v1/namespaces/"+ns+"/configmaps?watch=true&timeoutSeconds=2", nil)
		req.Header.Set("x-aws-eks-identity-arn", arn)
		resp, err := p.client.Do(req)
		must(t, err)
		defer resp.Body.Close()
		line, err := bufio.NewReader(resp.Body).ReadString('\n') // the initial ADDED event
		if err != nil || !strings.Contains(line, `"type":"ADDED"`) {
			t.Fatalf("first event %q: %v", line, err)
		}
		stopped := make(chan error, 1)
		go func() { stopped <- p.stop(t) }()
		// The watch ends when the API server closes it (timeoutSeconds), not when we stop.
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatalf("watch was cut during drain: %v", err)
		}
		if err := <-stopped; err != nil {
			t.Fatalf("proxy returned %v", err)
		}
		background.Wait()
		if _, err := os.Stat(p.socket); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket still exists after shutdown: %v", err)
		}
	})

	t.Run("stale socket is replaced", func(t *testing.T) {
		q := startProxyCommand(t, env, ns, proxyHooks{}, "--listen=unix://"+stale)
		q.socket = stale
		if code, body := q.get(t, "/api/v1/namespaces/"+ns+"/configmaps/cm", arn); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
	})
}

func TestListenRefusesToReplaceWhatIsNotAStaleSocket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	must(t, os.WriteFile(file, nil, 0o600))
	if _, err := listen("unix://" + file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
	live := filepath.Join(dir, "live.sock")
	l, err := listen("unix://" + live)
	must(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := listen("unix://" + live); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("live socket: %v", err)
	}
	// Two slashes instead of three: "somehost" would silently be dropped from the path.
	for _, bad := range []string{"http://x", "tcp://", "unix://", "unix://somehost" + filepath.Join(dir, "elsewhere.sock")} {
		if l, err := listen(bad); err == nil {
			t.Errorf("%s accepted (listening on %s)", bad, l.Addr())
			l.Close()
		}
	}
}

func TestProxyFlagsFallBackToEnvironment(t *testing.T) {
	cmd := newProxyCommandWithHooks(proxyHooks{})
	t.Setenv("CONNECTOR_LISTEN", "tcp://127.0.0.1:9999")
	t.Setenv("CONNECTOR_SHUTDOWN_TIMEOUT", "3s")
	t.Setenv("CONNECTOR_V", "")           // empty: unset, not a parse error
	t.Setenv("CONNECTOR_HEALTH_ADDR", "") // empty: unset too (the flag --health-addr="" turns the server off)
	t.Setenv("CONNECTOR_USER_EXTRAS", "true")
	must(t, cmd.ParseFlags([]string{"--metrics-addr=:1234"}))
	t.Setenv("CONNECTOR_METRICS_ADDR", ":5678") // a flag on the command line wins
	must(t, cli.ApplyEnv(cmd.Flags()))
	for flag, want := range map[string]string{"listen": "tcp://127.0.0.1:9999", "shutdown-timeout": "3s", "metrics-addr": ":1234", "health-addr": ":8081", "v": "0", "user-extras": "true"} {
		if got := cmd.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", flag, got, want)
		}
	}
	for _, flag := range []string{"listen", "api-server", "token-file", "ca-file", "metrics-addr", "health-addr", "user-extras"} {
		f := cmd.Flags().Lookup(flag)
		env := "CONNECTOR_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
		if !strings.Contains(f.Usage, env) {
			t.Errorf("--%s help does not document %s", flag, env)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startProxyAgainst runs "proxy" in front of a stand-in API server (for what the real one cannot
// do without a kubelet, such as exec sessions).
func startProxyAgainst(t *testing.T, api *httptest.Server, extraArgs ...string) *runningProxy {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "token"), []byte("proxy-token"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw}), 0o600))
	p := &runningProxy{socket: filepath.Join(dir, "connector.sock"), addrs: map[string]string{}, done: make(chan error, 1)}
	ready := make(chan struct{})
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("proxy logs:\n%s", logs.String())
		}
	})
	cmd := newProxyCommandWithHooks(proxyHooks{stderr: logs, listening: func(name string, _ net.Addr) {
		if name == "proxy" {
			close(ready)
		}
	}})
	cmd.SetArgs(append([]string{
		"--listen=unix://" + p.socket,
		"--api-server=" + api.URL,
		"--token-file=" + filepath.Join(dir, "token"),
		"--ca-file=" + filepath.Join(dir, "ca.crt"),
		"--metrics-addr=", "--health-addr=",
	}, extraArgs...))
	p.run(t, cmd, ready)
	t.Cleanup(func() { p.cancel(); <-p.done; p.done <- nil })
	return p
}

// echoUpstream answers WebSocket upgrades with an echo, like an exec session.
func echoUpstream(t *testing.T) *httptest.Server {
	up := websocket.Upgrader{Subprotocols: []string{"v5.channel.k8s.io"}}
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(mt, msg) != nil {
				return
			}
		}
	}))
	t.Cleanup(api.Close)
	return api
}

func (p *runningProxy) exec(t *testing.T) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{
		Subprotocols:     []string{"v5.channel.k8s.io"},
		HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", p.socket)
		},
	}
	c, resp, err := d.Dial("ws://connector/api/v1/namespaces/default/pods/p/exec?command=sh", http.Header{"X-Aws-Eks-Identity-Arn": {"arn:aws:iam::123456789012:user/alice"}})
	if err != nil {
		t.Fatalf("exec: %v (%v)", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func echo(c *websocket.Conn, msg string) error {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.BinaryMessage, []byte(msg)); err != nil {
		return err
	}
	_, got, err := c.ReadMessage()
	if err == nil && string(got) != msg {
		err = fmt.Errorf("echo %q, want %q", got, msg)
	}
	return err
}

// http.Server.Shutdown neither waits for nor closes hijacked connections, so exec, attach and
// port-forward sessions need their own drain: kept until they end or the drain timeout passes,
// then cut.
func TestShutdownDrainsExecSessions(t *testing.T) {
	api := echoUpstream(t)
	t.Run("a session that ends within the timeout is waited for", func(t *testing.T) {
		p := startProxyAgainst(t, api, "--shutdown-timeout=30s")
		c := p.exec(t)
		must(t, echo(c, "before"))
		p.cancel()
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("the proxy stopped (%v) while an exec session was open", err)
		case <-time.After(500 * time.Millisecond):
		}
		must(t, echo(c, "during the drain"))
		c.Close()
		select {
		case err := <-p.done:
			p.done <- err
			must(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("the proxy did not stop after the last session ended")
		}
	})
	t.Run("a session still open at the timeout is cut", func(t *testing.T) {
		p := startProxyAgainst(t, api, "--shutdown-timeout=300ms")
		c := p.exec(t)
		must(t, echo(c, "before"))
		p.cancel()
		select {
		case err := <-p.done:
			p.done <- err
			must(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("the proxy did not stop")
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ReadMessage()
		var ne net.Error
		if err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the session outlived the proxy's shutdown: read %v", err)
		}
	})
}

// The proxy believes whatever identity header a caller sends, so only the SSM agent may reach it:
// a unix socket, or TCP on loopback. Any other TCP address needs an explicit opt-in.
func TestRemoteTCPListenersNeedAnExplicitOptIn(t *testing.T) {
	for spec, remote := range map[string]bool{
		"tcp://127.0.0.1:8443":                  false,
		"tcp://[::1]:8443":                      false,
		"tcp://localhost:8443":                  false,
		"tcp://:8443":                           true,
		"tcp://0.0.0.0:8443":                    true,
		"tcp://[::]:8443":                       true,
		"tcp://10.0.0.7:8443":                   true,
		"tcp://proxy.example:8443":              true,
		"unix:///var/eks/shared/connector.sock": false,
	} {
		if err := checkListenExposure(spec, false); (err != nil) != remote {
			t.Errorf("%s: %v, want refused=%v", spec, err, remote)
		}
		if err := checkListenExposure(spec, true); err != nil {
			t.Errorf("%s with the opt-in: %v", spec, err)
		}
	}
	cmd := newProxyCommandWithHooks(proxyHooks{stderr: io.Discard})
	cmd.SetArgs([]string{"--listen=tcp://0.0.0.0:0", "--api-server=https://127.0.0.1:1", "--metrics-addr=", "--health-addr="})
	if err := cmd.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "--allow-remote-callers") {
		t.Fatalf("proxy on all interfaces without the opt-in: %v", err)
	}
}
