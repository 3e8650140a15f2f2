package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ekslink/ekslink/envtest/awstest"
	"github.com/ekslink/ekslink/podidentity"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The binary, configured only through its environment like the DaemonSet does, serves credentials
// from a SigV4-verifying EKS Auth endpoint on the bind host that exists (the agent address is not on
// this host and fails to bind), serves probes and metrics, and stops cleanly when its context ends (SIGTERM in main).
func TestServerCommandFromEnvironment(t *testing.T) {
	up, caFile := fakeEKSAuth(t, "prod", "ASIAFROMBINARY", awstest.Options{Service: "eks-auth", Protocol: awstest.RESTJSON})
	dir := filepath.Dir(caFile)
	port, probePort, metricsPort := freePort(t), freePort(t), freePort(t)
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":                awstest.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":            awstest.SecretAccessKey,
		"AWS_SESSION_TOKEN":                awstest.SessionToken,
		"AWS_REGION":                       "us-west-2",
		"AWS_CA_BUNDLE":                    caFile,
		"AWS_ENDPOINT_URL_EKS_AUTH":        up.URL,
		"AWS_CONFIG_FILE":                  filepath.Join(dir, "none"),
		"AWS_SHARED_CREDENTIALS_FILE":      filepath.Join(dir, "none"),
		"AWS_PROFILE":                      "",
		"EKS_CLUSTER_NAME":                 "prod",
		"POD_IDENTITY_BIND_HOSTS":          podidentity.AgentIPv4 + ",127.0.0.1",
		"POD_IDENTITY_PORT":                strconv.Itoa(port),
		"POD_IDENTITY_PROBE_ADDR":          fmt.Sprintf("127.0.0.1:%d", probePort),
		"POD_IDENTITY_METRICS_ADDR":        fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"POD_IDENTITY_UPSTREAM_TIMEOUT":    "3s",
		"POD_IDENTITY_BIND_RETRY_INTERVAL": "0s",
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := newRootCommand()
	cmd.SetArgs([]string{"server"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	payload := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"exp":%d}`, time.Now().Add(time.Hour).Unix())))
	token := "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln"
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/credentials", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := httpGet(t, url, token)
		if code == 200 {
			var doc map[string]string
			if err := json.Unmarshal([]byte(body), &doc); err != nil || doc["AccessKeyId"] != "ASIAFROMBINARY" || doc["AccountId"] != "111122223333" {
				t.Fatalf("credentials %s", body)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("server exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no credentials: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range []struct {
		url, want string
	}{
		{fmt.Sprintf("http://127.0.0.1:%d/healthz", probePort), "ok"},
		{fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort), `"upstream":"ok"`},
		{fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort), `ekslink_pod_identity_request_duration_seconds_count{code="200"} 1`},
	} {
		if code, body := httpGet(t, c.url, ""); code != 200 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s", c.url, code, body)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server returned %v after shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
}

func TestServerCommandRequiresClusterName(t *testing.T) {
	t.Setenv("EKS_CLUSTER_NAME", "")
	cmd := newRootCommand()
	cmd.SetArgs([]string{"server", "--bind-hosts=127.0.0.1", "--port=0"})
	cmd.SetOut(io.Discard)
	if err := cmd.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "cluster-name") {
		t.Fatalf("err = %v", err)
	}
}

func TestEveryFlagDocumentsItsEnvironmentVariable(t *testing.T) {
	for _, c := range newRootCommand().Commands() {
		if c.Name() == "version" {
			continue // the shared version command: --output only
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			if !strings.Contains(f.Usage, "[env ") {
				t.Errorf("%s --%s has no env fallback in its usage", c.Name(), f.Name)
			}
		})
	}
}

func TestBadEnvironmentValueIsAnError(t *testing.T) {
	t.Setenv("POD_IDENTITY_PORT", "eighty")
	cmd := newRootCommand()
	cmd.SetArgs([]string{"server", "--cluster-name=c"})
	if err := cmd.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "POD_IDENTITY_PORT") {
		t.Fatalf("err = %v", err)
	}
}

// fakeEKSAuth is a SigV4-verifying EKS Auth endpoint (opts) that answers AssumeRoleForPodIdentity
// for cluster with role credentials whose access key is accessKeyID, and 404 for any other
// cluster; caFile (in a test directory) holds its CA.
func fakeEKSAuth(t *testing.T, cluster, accessKeyID string, opts awstest.Options) (up *awstest.Server, caFile string) {
	t.Helper()
	up = awstest.New(t, opts)
	up.Handle("POST /clusters/{name}/assume-role-for-pod-identity", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != cluster {
			awstest.WriteRESTJSONError(w, 404, "ResourceNotFoundException", "no such cluster")
			return
		}
		awstest.WriteJSON(w, "", map[string]any{
			"assumedRoleUser": map[string]string{"arn": "arn:aws:sts::111122223333:assumed-role/app/s", "assumeRoleId": "AROA:s"},
			"credentials": map[string]any{"accessKeyId": accessKeyID, "secretAccessKey": "s", "sessionToken": "t",
				"expiration": time.Now().Add(6 * time.Hour).Unix()},
		})
	})
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return up, caFile
}
