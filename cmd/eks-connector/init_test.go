package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/internal/cli"
	"github.com/ekslink/ekslink/internal/ssmagent"
	"github.com/ekslink/ekslink/registration"
	"github.com/ekslink/ekslink/statestore"
)

const (
	testActivationID   = "11111111-2222-4333-8444-555555555555"
	testActivationCode = "SecretActivationCode-0123456789"
)

// clearConnectorEnv keeps the host's environment out of flag resolution.
func clearConnectorEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "CONNECTOR_") || name == "EKS_ACTIVATION_CODE" || name == "EKS_ACTIVATION_ID" ||
			name == "AWS_REGION" || name == "POD_NAME" || name == "AWS_ENDPOINT_URL_SSM" {
			t.Setenv(name, "")
		}
	}
}

func runCommand(ctx context.Context, t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	root.AddCommand(newSyncCommand())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func TestInitReportsEveryProblemUpFront(t *testing.T) {
	clearConnectorEnv(t)
	_, err := runCommand(context.Background(), t, "init", "--pod-name", "eks-connector-7d9f8b6c5-x2x4z",
		"--activation-code-file", filepath.Join(t.TempDir(), "missing"), "--ssm-endpoint", "ftp://x", "--region", "nowhere")
	if err == nil {
		t.Fatal("init without configuration succeeded")
	}
	for _, want := range []string{"--activation-id is required", "--activation-code-file", "--region", "--ssm-endpoint", "--pod-name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestInitFlagsFallBackToEnvironment(t *testing.T) {
	clearConnectorEnv(t)
	t.Setenv("CONNECTOR_ACTIVATION_ID", testActivationID)
	t.Setenv("EKS_ACTIVATION_CODE", testActivationCode)
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("POD_NAME", "eks-connector-3")
	t.Setenv("CONNECTOR_STATE_NAMESPACE", "ns1")
	cmd := newInitCommand()
	if err := cmd.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	if err := cmd.PreRunE(cmd, nil); err != nil {
		t.Fatal(err)
	}
	o := &initOptions{}
	get := func(n string) string { return cmd.Flags().Lookup(n).Value.String() }
	o.activationID, o.region, o.podName, o.stateNamespace = get("activation-id"), get("region"), get("pod-name"), get("state-namespace")
	o.statePrefix, o.vaultDir, o.agentVaultDir, o.timeout = get("state-secret-prefix"), get("vault-dir"), get("agent-vault-dir"), time.Minute
	name, code, err := o.validate()
	if err != nil {
		t.Fatal(err)
	}
	if name != "eks-connector-state-3" || code != testActivationCode || o.region != "eu-west-1" || o.stateNamespace != "ns1" {
		t.Fatalf("resolved %q %q %+v", name, code, o)
	}
	if !strings.Contains(cmd.Flags().Lookup("region").Usage, "AWS_REGION") {
		t.Error("--help does not document the env fallback")
	}
}

// fakeSSM is a plain-HTTP RegisterManagedInstance endpoint.
type fakeSSM struct {
	*httptest.Server
	mu    sync.Mutex
	calls int
}

func newFakeSSM(t *testing.T) *fakeSSM {
	f := &fakeSSM{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in map[string]string
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.mu.Lock()
		f.calls++
		f.mu.Unlock()
		if r.Header.Get("X-Amz-Target") != "AmazonSSM.RegisterManagedInstance" || in["ActivationCode"] != testActivationCode {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"__type":"InvalidActivation","message":"no"}`)
			return
		}
		fmt.Fprint(w, `{"InstanceId":"mi-0123456789abcdef0"}`)
	}))
	t.Cleanup(f.Close)
	return f
}

// connectorKubeconfig writes a kubeconfig for the eks-connector service account, which may only get
// and update its own, pre-created state Secret (as the manifests grant).
func connectorKubeconfig(t *testing.T, env *envtest.Environment, ns string) string {
	t.Helper()
	env.CreateServiceAccount(t, ns, "eks-connector")
	if _, err := env.Client.CoreV1().Secrets(ns).Create(envtest.Context(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "eks-connector-state-0"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.Grant(t, ns, "eks-connector-state", envtest.ServiceAccountSubject(ns, "eks-connector"), []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "update"}, ResourceNames: []string{"eks-connector-state-0"},
	}})
	return env.KubeconfigFile(t, clientcmdv1.AuthInfo{Token: env.Token(t, ns, "eks-connector", nil, 0)})
}

func TestInitAndSyncAgainstTheAPIServer(t *testing.T) {
	clearConnectorEnv(t)
	env := envtest.Start(t, &envtest.Environment{})
	ns := env.Namespace(t)
	kubeconfig := connectorKubeconfig(t, env, ns)
	ssm := newFakeSSM(t)
	vault := filepath.Join(t.TempDir(), "Vault")
	codeFile := filepath.Join(t.TempDir(), "code")
	if err := os.WriteFile(codeFile, []byte(testActivationCode+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := envtest.Context(t)
	args := []string{"init", "--activation-id", testActivationID, "--activation-code-file", codeFile, "--region", "eu-west-1",
		"--ssm-endpoint", ssm.URL, "--state-namespace", ns, "--vault-dir", vault, "--pod-name", "eks-connector-0", "--kubeconfig", kubeconfig}
	var logs string
	for run := 0; run < 2; run++ {
		out, err := runCommand(ctx, t, args...)
		if err != nil {
			t.Fatalf("init run %d: %v\n%s", run, err, out)
		}
		logs += out
	}
	if ssm.calls != 1 {
		t.Fatalf("SSM called %d times over two runs, want 1", ssm.calls)
	}
	v, err := registration.ReadVault(vault)
	if err != nil {
		t.Fatal(err)
	}
	if v.RegistrationKey.InstanceID != "mi-0123456789abcdef0" {
		t.Fatalf("vault instance %q", v.RegistrationKey.InstanceID)
	}
	if !strings.Contains(logs, "mi-0123456789abcdef0") {
		t.Error("logs do not name the instance id")
	}
	if strings.Contains(logs, testActivationCode) || strings.Contains(logs, v.RegistrationKey.PrivateKey[:40]) {
		t.Fatal("logs contain the activation code or the private key")
	}
	sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "eks-connector-state-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(sec.Data[registration.StateKey], []byte("mi-0123456789abcdef0")) {
		t.Fatal("state Secret does not record the instance")
	}

	// The standalone sync role picks up a key the agent rotates.
	syncCtx, cancel := context.WithCancel(ctx)
	addrs := make(chan [2]string, 2)
	done := make(chan error, 1)
	go func() {
		root := newRootCommand()
		for _, c := range root.Commands() {
			if c.Name() == "sync" { // replaced by the same command with a listening hook
				root.RemoveCommand(c)
			}
		}
		root.AddCommand(newSyncCommandWith(func(name string, a net.Addr) { addrs <- [2]string{name, "http://" + a.String()} }))
		root.SetArgs([]string{"sync", "--state-namespace", ns, "--vault-dir", vault, "--pod-name", "eks-connector-0",
			"--kubeconfig", kubeconfig, "--health-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--key-sync-interval", "200ms"})
		var out bytes.Buffer
		root.SetErr(&out)
		done <- root.ExecuteContext(syncCtx)
	}()
	servers := map[string]string{}
	for len(servers) < 2 {
		select {
		case a := <-addrs:
			servers[a[0]] = a[1]
		case err := <-done:
			t.Fatalf("sync exited: %v", err)
		}
	}
	health := servers["health"]
	waitReady := func() bool {
		resp, err := http.Get(health + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	poll(t, "sync ready", 10*time.Second, waitReady)
	key, err := registration.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Rotated the way the real agent does it (internal/ssmagent, amazon-ssm-agent instance_info.go
	// UpdatePrivateKey): rewritten in place, publicKey still the old key's.
	if _, err := (&ssmagent.Vault{Dir: vault}).UpdatePrivateKey(key.PrivateKey, ssmagent.KeyType, time.Now()); err != nil {
		t.Fatal(err)
	}
	poll(t, "rotated key in the Secret", 10*time.Second, func() bool {
		sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "eks-connector-state-0", metav1.GetOptions{})
		return err == nil && bytes.Contains(sec.Data[registration.StateKey], []byte(key.PrivateKey[:60]))
	})
	poll(t, "sync ready again", 10*time.Second, waitReady)
	resp, err := http.Get(servers["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var metrics bytes.Buffer
	_, _ = metrics.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(metrics.String(), "ekslink_registration_key_syncs_total 1") {
		t.Errorf("metrics:\n%s", metrics.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("sync: %v", err)
	}

	t.Run("init rerun keeps a key the agent rotated", func(t *testing.T) {
		// Init containers run again when the pod sandbox restarts, but the vault's emptyDir
		// survives: a key the agent rotated (and SSM now holds) that the sync did not save yet must
		// reach the Secret, not be overwritten with the Secret's older key (a lock-out).
		ns := env.Namespace(t)
		kubeconfig := connectorKubeconfig(t, env, ns)
		vault := filepath.Join(t.TempDir(), "Vault")
		args := []string{"init", "--activation-id", testActivationID, "--activation-code-file", codeFile, "--region", "eu-west-1",
			"--ssm-endpoint", ssm.URL, "--state-namespace", ns, "--vault-dir", vault, "--pod-name", "eks-connector-0", "--kubeconfig", kubeconfig}
		if out, err := runCommand(ctx, t, args...); err != nil {
			t.Fatalf("first init: %v\n%s", err, out)
		}
		v, err := registration.ReadVault(vault)
		if err != nil {
			t.Fatal(err)
		}
		oldKey := v.RegistrationKey.PrivateKey
		rotated, err := registration.GenerateKey(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// The agent's rotation (internal/ssmagent, amazon-ssm-agent instance_info.go
		// UpdatePrivateKey) keeps the old key's publicKey in the record.
		rotatedRecord, err := (&ssmagent.Vault{Dir: vault}).UpdatePrivateKey(rotated.PrivateKey, ssmagent.KeyType, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		before := ssm.calls
		if out, err := runCommand(ctx, t, args...); err != nil {
			t.Fatalf("init rerun: %v\n%s", err, out)
		}
		if ssm.calls != before {
			t.Fatal("init rerun called SSM")
		}
		after, err := registration.ReadVault(vault)
		if err != nil {
			t.Fatal(err)
		}
		if after.RegistrationKey.PrivateKey != rotated.PrivateKey {
			t.Fatalf("init rerun overwrote the rotated key in the vault (old key restored: %v)", after.RegistrationKey.PrivateKey == oldKey)
		}
		var agentRecord registration.RegistrationKey
		if err := json.Unmarshal(rotatedRecord, &agentRecord); err != nil {
			t.Fatal(err)
		}
		if after.RegistrationKey.PrivateKeyCreatedDate != agentRecord.PrivateKeyCreatedDate || after.RegistrationKey.PublicKey != rotated.PublicKey {
			t.Fatalf("rewritten vault record %+v: want the agent's date and the rotated key's public key", after.RegistrationKey)
		}
		st, _, err := registration.LoadState(ctx, statestore.NewSecret(env.Client, ns, "eks-connector-state-0", statestore.SecretOptions{}))
		if err != nil || st == nil {
			t.Fatalf("state: %+v, %v", st, err)
		}
		if st.Key.PrivateKey != rotated.PrivateKey || len(st.PreviousKeys) != 1 || st.PreviousKeys[0].PrivateKey != oldKey {
			t.Fatal("the rotated key is not the state's key with the old key kept as previous")
		}
	})

	t.Run("sealed state Secret", func(t *testing.T) {
		ns := env.Namespace(t)
		kubeconfig := connectorKubeconfig(t, env, ns)
		keyFile := filepath.Join(t.TempDir(), "state.key")
		if err := os.WriteFile(keyFile, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		vault := filepath.Join(t.TempDir(), "Vault")
		args := []string{"init", "--activation-id", testActivationID, "--activation-code-file", codeFile, "--region", "eu-west-1",
			"--ssm-endpoint", ssm.URL, "--state-namespace", ns, "--vault-dir", vault, "--pod-name", "eks-connector-0",
			"--kubeconfig", kubeconfig, "--state-encryption-key-file", keyFile}
		before := ssm.calls
		for run := 0; run < 2; run++ {
			if out, err := runCommand(ctx, t, args...); err != nil {
				t.Fatalf("sealed init run %d: %v\n%s", run, err, out)
			}
		}
		if ssm.calls != before+1 {
			t.Fatalf("%d SSM calls over two sealed runs, want 1", ssm.calls-before)
		}
		v, err := registration.ReadVault(vault)
		if err != nil {
			t.Fatal(err)
		}
		sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "eks-connector-state-0", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if raw := sec.Data[registration.StateKey]; len(raw) == 0 || bytes.Contains(raw, []byte(v.RegistrationKey.PrivateKey[:40])) || bytes.Contains(raw, []byte("mi-")) {
			t.Fatal("state Secret is not sealed")
		}
		if err := os.WriteFile(keyFile, bytes.Repeat([]byte{9}, 32), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := runCommand(ctx, t, args...); err == nil || !strings.Contains(err.Error(), "cannot open sealed value") {
			t.Fatalf("init with the wrong key: %v", err)
		}
		if ssm.calls != before+1 {
			t.Fatal("init with the wrong key called SSM")
		}
	})
}

func TestStartKeySyncDisabled(t *testing.T) {
	ready, err := startKeySync(context.Background(), cli.NewLogger(&bytes.Buffer{}, 0), nil, keySyncFlags{enabled: false})
	if ready != nil || err != nil {
		t.Fatal("disabled key sync started")
	}
	if _, err := startKeySync(context.Background(), cli.NewLogger(&bytes.Buffer{}, 0), nil, keySyncFlags{enabled: true, stateFlags: stateFlags{podName: "bad", statePrefix: "p", vaultDir: "/v"}}); err == nil {
		t.Fatal("invalid pod name accepted")
	}
}

func poll(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
