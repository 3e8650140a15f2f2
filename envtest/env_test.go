package envtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestMain(m *testing.M) { Main(m) }

func TestRBACIsEnforcedForServiceAccountTokens(t *testing.T) {
	env := Shared(t)
	ns := env.Namespace(t)
	env.CreateServiceAccount(t, ns, "reader")
	tok := env.Token(t, ns, "reader", nil, 0)
	client := env.ClientForToken(t, tok)

	_, err := client.CoreV1().ConfigMaps(ns).List(Context(t), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("before the RoleBinding: err = %v, want Forbidden", err)
	}
	env.Grant(t, ns, "read-configmaps", ServiceAccountSubject(ns, "reader"), []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}},
	})
	if _, err := client.CoreV1().ConfigMaps(ns).List(Context(t), metav1.ListOptions{}); err != nil {
		t.Fatalf("after the RoleBinding: %v", err)
	}
	if _, err := client.CoreV1().Secrets(ns).List(Context(t), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("secrets: err = %v, want Forbidden", err)
	}
}

func TestServesOIDCDocumentsWithTheGivenKeys(t *testing.T) {
	rsaKey, ecKey := NewRSAKey(), NewECKey()
	env := Start(t, &Environment{SigningKeys: []crypto.Signer{rsaKey, ecKey}, Issuer: "https://issuer.example.com/cluster", JWKSURI: "https://issuer.example.com/cluster/keys.json"})
	ctx := Context(t)
	rc := env.Client.CoreV1().RESTClient()

	raw, err := rc.Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var disc map[string]any
	if err := json.Unmarshal(raw, &disc); err != nil {
		t.Fatal(err)
	}
	if disc["issuer"] != "https://issuer.example.com/cluster" || disc["jwks_uri"] != "https://issuer.example.com/cluster/keys.json" {
		t.Fatalf("discovery = %s", raw)
	}
	raw, err = rc.Get().AbsPath("/openid/v1/jwks").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &jwks); err != nil {
		t.Fatal(err)
	}
	var sawRSA, sawEC bool
	for _, k := range jwks.Keys {
		switch k["kty"] {
		case "RSA":
			sawRSA = k["alg"] == "RS256" && k["n"] != "" && len(k["n"]) == (rsaKey.Public().(*rsa.PublicKey).N.BitLen()+5)/6
		case "EC":
			sawEC = k["alg"] == "ES256" && k["crv"] == "P-256" && ecKey.Public().(*ecdsa.PublicKey).Curve.Params().Name == "P-256"
		}
	}
	if len(jwks.Keys) != 2 || !sawRSA || !sawEC {
		t.Fatalf("jwks = %s", raw)
	}
}

func TestAPIServerRestart(t *testing.T) {
	env := Start(t, &Environment{})
	env.StopAPIServer()
	if _, err := env.Client.CoreV1().Namespaces().Get(Context(t), "default", metav1.GetOptions{}); err == nil {
		t.Fatal("API server still answers after StopAPIServer")
	}
	if err := env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Namespaces().Get(Context(t), "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

// Without the binaries, a control-plane test fails when CI is set and skips otherwise, saying what
// to run, whether it uses Start or Shared. The test binary runs two of its own tests again as
// child processes, with EKSLINK_TESTBIN_DIR naming an empty directory.
func TestMissingBinariesFailUnderCIAndSkipElsewhere(t *testing.T) {
	empty := t.TempDir()
	run := func(test string, ci bool) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v", "-test.count=1")
		cmd.Env = []string{EnvTestbinDir + "=" + empty}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, EnvTestbinDir+"=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		if ci {
			cmd.Env = append(cmd.Env, "CI=true")
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, test := range []string{"TestAPIServerRestart" /* Start */, "TestRBACIsEnforcedForServiceAccountTokens" /* Shared */} {
		out, err := run(test, true)
		if err == nil || !strings.Contains(out, "--- FAIL: "+test) {
			t.Errorf("%s with CI set and no binaries did not fail (err %v):\n%s", test, err, out)
		}
		for _, want := range []string{"CI is set, so this is a failure, not a skip", "make testbin", EnvTestbinDir + "=" + empty} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the failure does not say %q:\n%s", test, want, out)
			}
		}
		out, err = run(test, false)
		if err != nil || !strings.Contains(out, "--- SKIP: "+test) || !strings.Contains(out, "make testbin") {
			t.Errorf("%s without CI and no binaries did not skip saying what to run (err %v):\n%s", test, err, out)
		}
	}
}

// The life cycle without a testing.TB: Start returns the administrator config, a second Start is
// refused, Stop stops both processes and removes the data directory, and a second Stop is a no-op.
func TestEnvironmentStartStop(t *testing.T) {
	if _, err := FindBinaries(); err != nil {
		failOrSkip(t, err)
	}
	env := &Environment{StartTimeout: 2 * time.Minute, StopTimeout: 10 * time.Second}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	if cfg != env.Config || cfg.Host != env.URL || env.Issuer != DefaultIssuer || len(env.SigningKeys) != 1 || env.Binaries.Etcd == "" {
		t.Fatalf("Start did not fill in the Environment: config %p/%p, URL %s, issuer %q, %d keys, binaries %+v",
			cfg, env.Config, env.URL, env.Issuer, len(env.SigningKeys), env.Binaries)
	}
	if _, err := env.Start(); err == nil || !strings.Contains(err.Error(), "Start called twice") {
		t.Errorf("second Start: %v, want a refusal", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Discovery().ServerVersion(); err != nil {
		t.Fatalf("the API server does not answer the returned config: %v", err)
	}
	dir, etcd, api := env.dir, env.etcd, env.api
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	if !etcd.exited() || !api.exited() {
		t.Error("a process still runs after Stop")
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("data directory %s after Stop: %v", dir, err)
	}
	if err := env.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}
