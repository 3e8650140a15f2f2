package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"sigs.k8s.io/yaml"

	"github.com/ekslink/ekslink/envtest/awstest"
)

type upstreamContainer struct {
	Command []string `json:"command"`
	Args    []string `json:"args"`
}

// upstreamChartArgs reads testdata/upstream-chart.yaml (the upstream chart's rendered command lines)
// and returns each scenario's init and agent command lines after the binary: the subcommand
// followed by the args, with free ports substituted for 80, 2703 and 2705.
func upstreamChartArgs(t *testing.T, ports map[string]string) map[string][2][]string {
	t.Helper()
	raw, err := os.ReadFile("testdata/upstream-chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]struct {
		Init  upstreamContainer `json:"init"`
		Agent upstreamContainer `json:"agent"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string][2][]string{}
	for name, s := range doc {
		agent := append([]string{}, s.Agent.Command[2:]...)
		for i, a := range s.Agent.Args {
			if i > 0 && ports[s.Agent.Args[i-1]] != "" {
				a = ports[s.Agent.Args[i-1]]
			}
			agent = append(agent, a)
		}
		out[name] = [2][]string{append(append([]string{}, s.Init.Command[2:]...), s.Init.Args...), agent}
	}
	return out
}

// Node credentials of a hybrid node in two generations (the shared credentials file nodeadm rewrites).
var (
	hybridKeysA = aws.Credentials{AccessKeyID: "ASIAHYBRIDNODE000001", SecretAccessKey: "hybrid-node-secret-one-00000000000000001", SessionToken: "hybrid-session-1"}
	hybridKeysB = aws.Credentials{AccessKeyID: "ASIAHYBRIDNODE000002", SecretAccessKey: "hybrid-node-secret-two-00000000000000002", SessionToken: "hybrid-session-2"}
)

func writeNodeCredentials(t *testing.T, file string, c aws.Credentials, withSecret bool) {
	t.Helper()
	body := "[default]\naws_access_key_id = " + c.AccessKeyID + "\n"
	if withSecret {
		body += "aws_secret_access_key = " + c.SecretAccessKey + "\naws_session_token = " + c.SessionToken + "\n"
	}
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newToken() string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"exp":%d,"jti":"%d"}`, time.Now().Add(time.Hour).Unix(), time.Now().UnixNano())))
	return "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln"
}

// The agent runs with the upstream chart's command lines verbatim (see testdata/upstream-chart.yaml)
// and serves: credentials, probes, and, with metrics enabled, the upstream metric names on
// --metrics-port. The init container's "initialize -v trace" parses as the init command. In the
// hybrid DaemonSet (--rotate-credentials true) a rewrite of the shared credentials file is used by
// the next EKS Auth call, and a broken file fails readiness and the metric without any call being
// signed.
func TestUpstreamChartCommandLinesServe(t *testing.T) {
	up, caFile := fakeEKSAuth(t, "EKS_CLUSTER_NAME", "ASIAPOD", awstest.Options{Service: "eks-auth", Protocol: awstest.RESTJSON, Credentials: []aws.Credentials{
		{AccessKeyID: awstest.AccessKeyID, SecretAccessKey: awstest.SecretAccessKey, SessionToken: awstest.SessionToken}, hybridKeysA, hybridKeysB,
	}})
	dir := filepath.Dir(caFile)
	for _, scenario := range []string{"default", "metrics", "hybrid", "addon"} {
		t.Run(scenario, func(t *testing.T) {
			up.Reset()
			port, probePort, metricsPort := freePort(t), freePort(t), freePort(t)
			lines := upstreamChartArgs(t, map[string]string{"--port": strconv.Itoa(port), "--probe-port": strconv.Itoa(probePort), "--metrics-port": strconv.Itoa(metricsPort)})
			initArgs, agentArgs := lines[scenario][0], lines[scenario][1]
			credsFile := filepath.Join(t.TempDir(), "credentials")
			env := map[string]string{
				// The chart's env (AWS_REGION) plus what the test host needs: EKS Auth on loopback, and
				// loopback as bind host because the agent addresses are not on this host.
				"AWS_REGION":                       "us-west-2",
				"AWS_CA_BUNDLE":                    caFile,
				"AWS_ENDPOINT_URL_EKS_AUTH":        up.URL,
				"AWS_CONFIG_FILE":                  filepath.Join(dir, "none"),
				"AWS_SHARED_CREDENTIALS_FILE":      filepath.Join(dir, "none"),
				"AWS_PROFILE":                      "",
				"AWS_ACCESS_KEY_ID":                awstest.AccessKeyID,
				"AWS_SECRET_ACCESS_KEY":            awstest.SecretAccessKey,
				"AWS_SESSION_TOKEN":                awstest.SessionToken,
				"EKS_CLUSTER_NAME":                 "",
				"POD_IDENTITY_BIND_HOSTS":          "127.0.0.1",
				"POD_IDENTITY_BIND_RETRY_INTERVAL": "0s",
				"POD_IDENTITY_METRICS_ADDR":        "",
			}
			if scenario != "metrics" {
				env["POD_IDENTITY_METRICS_ADDR"] = fmt.Sprintf("127.0.0.1:%d", metricsPort) // not the shared 2705
			}
			if scenario == "hybrid" {
				// The hybrid DaemonSet mounts the node's .aws directory; the node role is only there.
				env["AWS_SHARED_CREDENTIALS_FILE"] = credsFile
				env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"] = "", "", ""
				writeNodeCredentials(t, credsFile, hybridKeysA, true)
			}
			for k, v := range env {
				t.Setenv(k, v)
			}

			root := newRootCommand()
			c, rest, err := root.Find(initArgs)
			if err != nil || c.Name() != "init" {
				t.Fatalf("init command line %q: %v %v", initArgs, c, err)
			}
			if err := c.ParseFlags(rest); err != nil || len(c.Flags().Args()) != 0 {
				t.Fatalf("init command line %q: %v %q", initArgs, err, c.Flags().Args())
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			root.SetArgs(agentArgs)
			done := make(chan error, 1)
			go func() { done <- root.ExecuteContext(ctx) }()
			credsURL := fmt.Sprintf("http://127.0.0.1:%d/v1/credentials", port)
			get := func(tok string) (int, string) { return httpGet(t, credsURL, tok) }
			deadline := time.Now().Add(10 * time.Second)
			for {
				code, body := get(newToken())
				if code == 200 {
					break
				}
				select {
				case err := <-done:
					t.Fatalf("agent %q exited: %v", agentArgs, err)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("agent %q serves no credentials: %d %s", agentArgs, code, body)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if code, body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort), ""); code != 200 {
				t.Fatalf("readyz %d %s", code, body)
			}
			metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
			_, metrics := httpGet(t, metricsURL, "")
			for _, want := range []string{`pod_identity_http_response{code="200"} 1`, `pod_identity_cache_state{state="miss"} 1`} {
				if !strings.Contains(metrics, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			if scenario == "metrics" {
				// --metrics-port alone listens on the upstream default host, 0.0.0.0, and answers probes too.
				if code, _ := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", metricsPort), ""); code != 200 {
					t.Errorf("healthz on the metrics port: %d", code)
				}
			}
			if scenario == "hybrid" {
				checkRotation(t, up, credsFile, get, fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort), metricsURL)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("agent returned %v after shutdown", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("agent did not stop")
			}
		})
	}
}

func signedBy(up *awstest.Server) []string {
	var ids []string
	for _, r := range up.Requests() {
		ids = append(ids, r.AccessKeyID)
	}
	return ids
}

func checkRotation(t *testing.T, up *awstest.Server, credsFile string, get func(string) (int, string), readyURL, metricsURL string) {
	t.Helper()
	if ids := signedBy(up); len(ids) != 1 || ids[0] != hybridKeysA.AccessKeyID {
		t.Fatalf("first call signed by %v, want the file's %s", ids, hybridKeysA.AccessKeyID)
	}
	// nodeadm rewrites the file; once the agent has read it, the next call is signed with the new key.
	// Rewrite it again only now and then: a rewrite every few milliseconds would keep restarting the
	// agent's settle timer (it waits for the writes to stop before reading).
	deadline := time.Now().Add(10 * time.Second)
	var written time.Time
	for {
		if time.Since(written) > time.Second {
			writeNodeCredentials(t, credsFile, hybridKeysB, true)
			written = time.Now()
		}
		_, m := httpGet(t, metricsURL, "")
		if strings.Contains(m, `ekslink_shared_credentials_reloads_total{result="changed"} 2`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rewrite not read:\n%s", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := get(newToken()); code != 200 {
		t.Fatalf("after rotation: %d %s", code, body)
	}
	if ids := signedBy(up); len(ids) != 2 || ids[1] != hybridKeysB.AccessKeyID {
		t.Fatalf("call after the rewrite signed by %v, want %s", ids, hybridKeysB.AccessKeyID)
	}

	// A broken file (the secret is missing): readiness fails, the metric says so, nothing is signed.
	writeNodeCredentials(t, credsFile, hybridKeysB, false)
	for {
		code, body := httpGet(t, readyURL, "")
		if code == 503 {
			var doc map[string]any
			if err := json.Unmarshal([]byte(body), &doc); err != nil || !strings.Contains(fmt.Sprint(doc["nodeCredentials"]), credsFile) {
				t.Fatalf("readyz body %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz stays %d with a broken credentials file", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, m := httpGet(t, metricsURL, ""); !strings.Contains(m, "ekslink_shared_credentials_loaded 0") || !strings.Contains(m, `ekslink_shared_credentials_reloads_total{result="error"}`) {
		t.Fatalf("metrics do not show the failed load:\n%s", m)
	}
	if code, body := get(newToken()); code == 200 {
		t.Fatalf("credentials served with a broken node credentials file: %s", body)
	}
	if ids := signedBy(up); len(ids) != 2 {
		t.Fatalf("EKS Auth calls with a broken credentials file: %v", ids)
	}
	writeNodeCredentials(t, credsFile, hybridKeysA, true)
	for {
		if code, _ := httpGet(t, readyURL, ""); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readyz does not recover after the file is fixed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
