package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/envtest/awstest"
	"github.com/ekslink/ekslink/oidc"
)

// runOIDC executes `ekslink oidc <args>` in-process.
func runOIDC(t *testing.T, ctx context.Context, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newOIDCCommand()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	if ctx == nil {
		ctx = context.Background()
	}
	err = cmd.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

func TestOIDCKeygenDiscoveryJWKS(t *testing.T) {
	dir := t.TempDir()
	out, _, err := runOIDC(t, nil, "", "keygen", "--type", "p-256", "--out-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	var kg map[string]string
	if err := json.Unmarshal([]byte(out), &kg); err != nil || kg["alg"] != "ES256" || kg["kid"] == "" {
		t.Fatalf("keygen output %q: %v", out, err)
	}
	for _, f := range []string{"sa.key", "sa.pub"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v", f, err, st.Mode())
		}
	}
	if out, _, err := runOIDC(t, nil, "", "keygen", "--out-dir", dir); err == nil || out != "" {
		t.Fatalf("keygen overwrote an existing key: out %q err %v", out, err)
	}

	const issuer = "https://s3.eu-west-1.amazonaws.com/cli-test"
	keys, err := oidc.ParseKeyFiles(filepath.Join(dir, "sa.pub"))
	if err != nil {
		t.Fatal(err)
	}
	wantDisc, wantJWKS, err := oidc.Documents(issuer, keys, oidc.DocumentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = runOIDC(t, nil, "", "discovery", "--issuer", issuer, "--key-file", filepath.Join(dir, "sa.key"))
	if err != nil || out != string(wantDisc) {
		t.Fatalf("discovery %q, %v; want %s", out, err, wantDisc)
	}
	t.Setenv("EKSLINK_OIDC_KEY_FILE", filepath.Join(dir, "sa.pub"))
	out, _, err = runOIDC(t, nil, "", "jwks")
	if err != nil || out != string(wantJWKS) {
		t.Fatalf("jwks from env %q, %v; want %s", out, err, wantJWKS)
	}
	out, errOut, err := runOIDC(t, nil, "", "discovery", "--issuer", issuer+"/")
	if err != nil || !strings.Contains(errOut, "ends with a slash") || !strings.HasPrefix(out, `{"issuer":"`+issuer+`/"`) {
		t.Fatalf("trailing slash: out %q stderr %q err %v", out, errOut, err)
	}
}

func TestOIDCFailuresWriteNothingToStdout(t *testing.T) {
	dir := t.TempDir()
	weak := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(weak, []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "good.pub")
	p, err := envtest.PublicKeyPEM(envtest.NewECKey().Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, p, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("a"), 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"oversized token file", []string{"verify-token", "--token-file", big, "--key-file", pub, "--issuer", "https://x.example.com"}, "larger than"},
		{"endless token file", []string{"verify-token", "--token-file", "/dev/zero", "--key-file", pub, "--issuer", "https://x.example.com"}, "not a regular file"},
		{"oversized token on stdin is not truncated", []string{"verify-token", "--token-file", "-", "--key-file", pub, "--issuer", "https://x.example.com"}, "larger than"},
		{"endless JWKS file", []string{"verify-token", "--token-file", pub, "--jwks-file", "/dev/zero", "--issuer", "https://x.example.com"}, "not a regular file"},
		{"endless chain file", []string{"thumbprint", "--chain-file", "/dev/zero"}, "not a regular file"},
		{"malformed key file", []string{"jwks", "--key-file", weak}, "malformed key"},
		{"missing key file flag", []string{"jwks"}, "--key-file is required"},
		{"http issuer", []string{"discovery", "--issuer", "http://x.example.com", "--key-file", weak}, "scheme"},
		{"no thumbprint source", []string{"thumbprint"}, "exactly one"},
		{"trust policy without provider", []string{"trust-policy", "--issuer", "https://x.example.com", "--namespace", "a", "--service-account", "b"}, "--provider-arn or --account-id"},
		{"unknown key type", []string{"keygen", "--type", "ed25519", "--out-dir", dir}, "unsupported"},
		{"zero reload interval", []string{"serve", "--issuer", "https://x.example.com", "--key-file", pub, "--listen", "127.0.0.1:0", "--reload-interval", "0"}, "--reload-interval"},
		{"TLS key without certificate", []string{"serve", "--issuer", "https://x.example.com", "--key-file", pub, "--listen", "127.0.0.1:0", "--tls-key-file", pub}, "--tls-cert-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A command that wrongly starts serving stops at the deadline instead of hanging.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, _, err := runOIDC(t, ctx, strings.Repeat("a", 2<<20), tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if out != "" {
				t.Fatalf("stdout %q on failure", out)
			}
		})
	}
}

// A named pipe given as an input file used to block the command in open(2) before any size limit
// applied, and SIGTERM (the context) could not stop it. Every file-reading flag must refuse it at
// once with an error that says what the path is.
func TestOIDCNamedPipeInputsFailPromptly(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "sa.pub")
	p, err := envtest.PublicKeyPEM(envtest.NewECKey().Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, p, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"token file": {"verify-token", "--token-file", fifo, "--key-file", pub, "--issuer", "https://x.example.com"},
		"JWKS file":  {"verify-token", "--token-file", pub, "--jwks-file", fifo, "--issuer", "https://x.example.com"},
		"key file":   {"jwks", "--key-file", fifo},
		"chain file": {"thumbprint", "--chain-file", fifo},
		"CA file":    {"thumbprint", "--url", "https://127.0.0.1:1", "--ca-file", fifo},
		"serve keys": {"serve", "--issuer", "https://x.example.com", "--key-file", fifo, "--listen", "127.0.0.1:0"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			type result struct {
				out string
				err error
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() {
				out, _, err := runOIDC(t, ctx, "", args...)
				done <- result{out, err}
			}()
			select {
			case r := <-done:
				if r.err == nil || !strings.Contains(r.err.Error(), "named pipe") || !strings.Contains(r.err.Error(), fifo) {
					t.Fatalf("err = %v, want a named-pipe refusal naming %s", r.err, fifo)
				}
				if r.out != "" {
					t.Fatalf("stdout %q on failure", r.out)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("took %s", d)
				}
			case <-time.After(10 * time.Second):
				// Release the blocked open so that the test binary can finish.
				if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					_ = w.Close()
				}
				t.Fatal("the command was still blocked on the named pipe after 10s, past its context deadline")
			}
		})
	}
}

func TestOIDCTrustPolicyAndThumbprint(t *testing.T) {
	out, _, err := runOIDC(t, nil, "", "trust-policy", "--issuer", "https://oidc.example.com/c1", "--account-id", "123456789012", "--namespace", "apps", "--service-account", "reader")
	if err != nil || !strings.Contains(out, `"oidc.example.com/c1:sub": "system:serviceaccount:apps:reader"`) || !strings.Contains(out, "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/c1") {
		t.Fatalf("trust-policy %q: %v", out, err)
	}

	srv := awstest.New(t, awstest.Options{Service: "s3"}) // any TLS server with a known certificate
	chain := filepath.Join(t.TempDir(), "chain.pem")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(chain, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	offline, _, err := runOIDC(t, nil, "", "thumbprint", "--chain-file", chain)
	if err != nil || len(strings.TrimSpace(offline)) != 40 {
		t.Fatalf("offline %q: %v", offline, err)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	live, _, err := runOIDC(t, nil, "", "thumbprint", "--url", "https://127.0.0.1:"+port+"/keys", "--ca-file", ca)
	if err != nil || live != offline {
		t.Fatalf("live %q (err %v), offline %q", live, err, offline)
	}
}

func TestOIDCVerifyTokenAgainstAPIServer(t *testing.T) {
	const issuer = "https://oidc.ekslink.example/cli"
	key := envtest.NewECKey()
	env := envtest.Start(t, &envtest.Environment{SigningKeys: []crypto.Signer{key}, Issuer: issuer})
	ns := env.Namespace(t)
	env.CreateServiceAccount(t, ns, "app")
	pub, err := envtest.PublicKeyPEM(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "sa.pub")
	if err := os.WriteFile(keyFile, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	tok := env.Token(t, ns, "app", []string{oidc.DefaultAudience}, 10*time.Minute)

	out, _, err := runOIDC(t, nil, tok, "verify-token", "--token-file", "-", "--key-file", keyFile, "--issuer", issuer)
	if err != nil {
		t.Fatal(err)
	}
	var claims oidc.Claims
	if err := json.Unmarshal([]byte(out), &claims); err != nil || claims.Namespace != ns || claims.ServiceAccount != "app" {
		t.Fatalf("claims %q: %v", out, err)
	}
	out, _, err = runOIDC(t, nil, tok, "verify-token", "--token-file", "-", "--key-file", keyFile, "--issuer", issuer, "--audience", "other")
	if !errors.Is(err, oidc.ErrAudience) || out != "" {
		t.Fatalf("wrong audience: out %q err %v", out, err)
	}
}

// keysAndFreeAddr generates a P-256 key pair (sa.key, sa.pub) in a new directory and returns it
// with a loopback address nothing listens on.
func keysAndFreeAddr(t *testing.T) (dir, addr string) {
	t.Helper()
	dir = t.TempDir()
	if _, _, err := runOIDC(t, nil, "", "keygen", "--type", "p-256", "--out-dir", dir); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return dir, ln.Addr().String()
}

func TestOIDCServe(t *testing.T) {
	dir, addr := keysAndFreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := runOIDC(t, ctx, "", "serve", "--issuer", "https://oidc.example.com/c1", "--key-file", filepath.Join(dir, "sa.pub"), "--listen", addr, "--reload-interval", "1h")
		done <- err
	}()
	get := func(path string) (*http.Response, string) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + path)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp, string(b)
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	resp, body := get("/c1/openid/v1/jwks")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/jwk-set+json" || !strings.Contains(body, `"kty":"EC"`) {
		t.Fatalf("jwks: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, body = get("/c1/.well-known/openid-configuration")
	if resp.StatusCode != 200 || !strings.Contains(body, `"jwks_uri":"https://oidc.example.com/c1/openid/v1/jwks"`) {
		t.Fatalf("discovery: %d %s", resp.StatusCode, body)
	}
	if _, body = get("/metrics"); !strings.Contains(body, "ekslink_oidc_requests_total") {
		t.Fatalf("metrics: %s", body)
	}

	// Rotation: a second key added to the file is published without a restart, on the file event
	// (the periodic re-read is an hour away); a broken file keeps the published documents.
	if _, _, err := runOIDC(t, nil, "", "keygen", "--type", "rsa-2048", "--out-dir", dir, "--name", "next"); err != nil {
		t.Fatal(err)
	}
	cur, _ := os.ReadFile(filepath.Join(dir, "sa.pub"))
	next, _ := os.ReadFile(filepath.Join(dir, "next.pub"))
	if err := oidcWriteFileAtomic(filepath.Join(dir, "sa.pub"), append(next, cur...)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, body = get("/c1/openid/v1/jwks"); strings.Contains(body, `"kty":"RSA"`) && strings.Contains(body, `"kty":"EC"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotated key not published: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rotated := body
	if err := oidcWriteFileAtomic(filepath.Join(dir, "sa.pub"), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	for {
		if _, m := get("/metrics"); strings.Contains(m, `ekslink_oidc_key_reloads_total{result="error"}`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("broken key file not noticed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, body = get("/c1/openid/v1/jwks"); body != rotated {
		t.Fatalf("broken key file changed the documents: %s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestOIDCVerifyTokenLeewayZeroMeansNone(t *testing.T) {
	key := envtest.NewECKey()
	pub, err := envtest.PublicKeyPEM(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "sa.pub")
	if err := os.WriteFile(keyFile, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	kid, err := oidc.KeyID(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://oidc.example.com/leeway"
	now := time.Now()
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: issuer, Subject: "system:serviceaccount:ns:app", Audience: jwt.Audience{oidc.DefaultAudience},
		IssuedAt: jwt.NewNumericDate(now.Add(-10 * time.Minute)), Expiry: jwt.NewNumericDate(now.Add(-20 * time.Second)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"verify-token", "--token-file", "-", "--key-file", keyFile, "--issuer", issuer}
	if _, _, err := runOIDC(t, nil, tok, args...); err != nil {
		t.Fatalf("20 s past exp within the default leeway: %v", err)
	}
	if out, _, err := runOIDC(t, nil, tok, append(args, "--leeway", "0")...); !errors.Is(err, oidc.ErrExpired) || out != "" {
		t.Fatalf("--leeway 0: out %q err %v, want ErrExpired", out, err)
	}
	t.Setenv("EKSLINK_OIDC_LEEWAY", "0s")
	if out, _, err := runOIDC(t, nil, tok, args...); !errors.Is(err, oidc.ErrExpired) || out != "" {
		t.Fatalf("EKSLINK_OIDC_LEEWAY=0s: out %q err %v, want ErrExpired", out, err)
	}
}

func TestOIDCVerifyTokenDiscoverGivesUpOnAHungIssuer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var conns []net.Conn // accepted and never answered: the TLS handshake hangs
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	out, _, err := runOIDC(t, ctx, "x.y.z", "verify-token", "--token-file", "-", "--discover", "--issuer", "https://"+ln.Addr().String()+"/c", "--timeout", "300ms")
	if err == nil || !strings.Contains(err.Error(), "deadline") || out != "" {
		t.Fatalf("out %q err %v, want a deadline error", out, err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestOIDCServeWithABadCertificateReleasesThePort(t *testing.T) {
	dir, addr := keysAndFreeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The key file is no certificate: serving must fail at once.
	_, _, err := runOIDC(t, ctx, "", "serve", "--issuer", "https://oidc.example.com/c1", "--key-file", filepath.Join(dir, "sa.pub"),
		"--listen", addr, "--tls-cert-file", filepath.Join(dir, "sa.pub"), "--tls-key-file", filepath.Join(dir, "sa.key"))
	if err == nil {
		t.Fatal("served with an unusable certificate")
	}
	again, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the failed serve left %s bound: %v", addr, err)
	}
	again.Close()

	// A usable certificate serves HTTPS.
	key := envtest.NewECKey()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := envtest.PrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, _, err := runOIDC(t, sctx, "", "serve", "--issuer", "https://oidc.example.com/c1", "--key-file", filepath.Join(dir, "sa.pub"),
			"--listen", addr, "--tls-cert-file", certFile, "--tls-key-file", keyFile)
		done <- err
	}()
	roots := x509.NewCertPool()
	roots.AddCert(must(x509.ParseCertificate(der)))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get("https://" + addr + "/c1/openid/v1/jwks")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestOIDCKeygenConcurrentRunsNeverReplaceAKey(t *testing.T) {
	dir := t.TempDir()
	const runs = 8
	outs := make(chan string, runs)
	var wg sync.WaitGroup
	for range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _, err := runOIDC(t, nil, "", "keygen", "--type", "p-256", "--out-dir", dir)
			if err == nil {
				outs <- out
			} else if out != "" {
				t.Errorf("failed keygen printed %q", out)
			}
		}()
	}
	wg.Wait()
	close(outs)
	var won []string
	for o := range outs {
		won = append(won, o)
	}
	if len(won) != 1 {
		t.Fatalf("%d keygens reported success for the same files", len(won))
	}
	var kg map[string]string
	if err := json.Unmarshal([]byte(won[0]), &kg); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"sa.key", "sa.pub"} {
		keys, err := oidc.ParseKeyFiles(filepath.Join(dir, f))
		if err != nil || len(keys) != 1 || keys[0].ID != kg["kid"] {
			t.Fatalf("%s does not hold the reported key %s: %v", f, kg["kid"], err)
		}
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, %v", f, st.Mode(), err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestOIDCForceIsNeverTakenFromTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, err := runOIDC(t, nil, "", "keygen", "--out-dir", dir); err != nil {
		t.Fatalf("keygen: %v %s", err, stderr)
	}
	before, err := os.ReadFile(filepath.Join(dir, "sa.key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("EKSLINK_OIDC_FORCE", "true")
	if _, _, err := runOIDC(t, nil, "", "keygen", "--out-dir", dir); err == nil {
		t.Fatal("EKSLINK_OIDC_FORCE overwrote an existing key")
	}
	after, _ := os.ReadFile(filepath.Join(dir, "sa.key"))
	if !bytes.Equal(before, after) {
		t.Fatal("the key file changed")
	}
}
