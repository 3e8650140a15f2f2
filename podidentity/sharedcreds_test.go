package podidentity

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ekslink/ekslink/envtest/awstest"
)

// Two generations of node credentials, as nodeadm / the SSM agent write them on a hybrid node
// (an INI profile with aws_access_key_id, aws_secret_access_key, aws_session_token).
var (
	nodeCredsA = aws.Credentials{AccessKeyID: "ASIANODEKEYGEN000001", SecretAccessKey: "node-secret-generation-one-000000000001", SessionToken: "node-session-1"}
	nodeCredsB = aws.Credentials{AccessKeyID: "ASIANODEKEYGEN000002", SecretAccessKey: "node-secret-generation-two-000000000002", SessionToken: "node-session-2"}
)

func writeSharedCreds(t *testing.T, file string, c aws.Credentials) {
	t.Helper()
	body := "[default]\naws_access_key_id = " + c.AccessKeyID + "\naws_secret_access_key = " + c.SecretAccessKey + "\naws_session_token = " + c.SessionToken + "\n"
	// In place, as the SSM agent's shared credentials writer does (not an atomic rename).
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rotationEndpoint is an EKS Auth endpoint that verifies SigV4 for both key generations and
// records which access key signed each request.
func rotationEndpoint(t *testing.T) *awstest.Server {
	s := awstest.New(t, awstest.Options{Service: "eks-auth", Protocol: awstest.RESTJSON, Credentials: []aws.Credentials{nodeCredsA, nodeCredsB}})
	s.Handle("POST /clusters/{name}/assume-role-for-pod-identity", authTestSuccess)
	return s
}

func signers(s *awstest.Server) []string {
	var ids []string
	for _, r := range s.Requests() {
		ids = append(ids, r.AccessKeyID)
	}
	return ids
}

// The upstream agent's --rotate-credentials (internal/sharedcredsrotater in
// aws/eks-pod-identity-agent) re-reads AWS_SHARED_CREDENTIALS_FILE every minute. Here a rewrite is
// picked up from the file event: the next EKS Auth call is signed with the new key.
func TestSharedCredentialsFileFollowsRewrites(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "credentials")
	writeSharedCreds(t, file, nodeCredsA)
	reg := prometheus.NewRegistry()
	p, err := NewSharedCredentialsFile(t.Context(), SharedCredentialsOptions{
		lookupEnv: func(k string) (string, bool) { return map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file}[k], true },
		Debounce:  10 * time.Millisecond, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.File() != file || p.Err() != nil {
		t.Fatalf("file %s err %v", p.File(), p.Err())
	}
	s, c := runSharedCredentials(t, p)
	if _, err := c.AssumeRoleForPodIdentity(t.Context(), "c1", authTestToken); err != nil {
		t.Fatal(err)
	}
	writeSharedCreds(t, file, nodeCredsB)
	deadline := time.Now().Add(5 * time.Second)
	for p.Err() != nil || mustRetrieve(t, p).AccessKeyID != nodeCredsB.AccessKeyID {
		if time.Now().After(deadline) {
			t.Fatal("rewrite not picked up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := c.AssumeRoleForPodIdentity(t.Context(), "c1", authTestToken); err != nil {
		t.Fatal(err)
	}
	if got := signers(s); len(got) != 2 || got[0] != nodeCredsA.AccessKeyID || got[1] != nodeCredsB.AccessKeyID {
		t.Fatalf("signed by %v", got)
	}
	if v := metricNumber(t, p.reloads.WithLabelValues("changed")); v != 2 {
		t.Errorf("changed reloads = %v", v)
	}
	if v := metricNumber(t, p.loaded); v != 1 {
		t.Errorf("loaded = %v", v)
	}
}

func mustRetrieve(t *testing.T, p *SharedCredentialsFile) aws.Credentials {
	t.Helper()
	c, err := p.Retrieve(t.Context())
	if err != nil {
		return aws.Credentials{}
	}
	return c
}

// A file that fails to load (half written, keys missing, deleted) drops the keys: Err and the
// gauge say so, Retrieve fails, and the SDK sends nothing, so no request is signed with stale or
// garbage keys. Fixing the file restores signing.
func TestSharedCredentialsFileFailsClosed(t *testing.T) {
	for name, broken := range map[string]func(file string){
		"no secret": func(f string) {
			_ = os.WriteFile(f, []byte("[default]\naws_access_key_id = ASIANODEKEYGEN000002\n"), 0o600)
		},
		"not INI": func(f string) { _ = os.WriteFile(f, []byte("[default\naws_access_key_id\x00"), 0o600) },
		"no profile": func(f string) {
			_ = os.WriteFile(f, []byte("[other]\naws_access_key_id = A\naws_secret_access_key = B\n"), 0o600)
		},
		"deleted": func(f string) { _ = os.Remove(f) },
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "credentials")
			writeSharedCreds(t, file, nodeCredsA)
			var logs []string
			var mu sync.Mutex
			log := funcr.New(func(prefix, args string) { mu.Lock(); logs = append(logs, args); mu.Unlock() }, funcr.Options{})
			p, err := NewSharedCredentialsFile(t.Context(), SharedCredentialsOptions{File: file, Logger: log, Debounce: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			s, c := runSharedCredentials(t, p)
			broken(file)
			deadline := time.Now().Add(5 * time.Second)
			for p.Err() == nil {
				if time.Now().After(deadline) {
					t.Fatal("broken file not noticed")
				}
				time.Sleep(5 * time.Millisecond)
			}
			var se *SharedCredentialsError
			if !errors.As(p.Err(), &se) || se.File != file || !strings.Contains(p.Err().Error(), "nothing is signed") {
				t.Fatalf("Err = %v", p.Err())
			}
			if v := metricNumber(t, p.loaded); v != 0 {
				t.Errorf("loaded = %v", v)
			}
			if _, err := c.AssumeRoleForPodIdentity(t.Context(), "c1", authTestToken); err == nil || !errors.As(err, &se) {
				t.Fatalf("call with a broken file: %v", err)
			}
			if n := len(s.Requests()); n != 0 {
				t.Fatalf("%d requests reached EKS Auth with a broken credentials file", n)
			}
			writeSharedCreds(t, file, nodeCredsB)
			for p.Err() != nil {
				if time.Now().After(deadline) {
					t.Fatal("fixed file not picked up")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if _, err := c.AssumeRoleForPodIdentity(t.Context(), "c1", authTestToken); err != nil {
				t.Fatal(err)
			}
			if got := signers(s); len(got) != 1 || got[0] != nodeCredsB.AccessKeyID {
				t.Fatalf("signed by %v", got)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, l := range logs {
				if strings.Contains(l, nodeCredsA.SecretAccessKey) || strings.Contains(l, nodeCredsB.SecretAccessKey) || strings.Contains(l, nodeCredsB.SessionToken) {
					t.Fatalf("secret in log: %s", l)
				}
			}
		})
	}
}

// Without file events (Run not running, or a filesystem that sends none) the file is read again
// once the last read is an Interval old.
func TestSharedCredentialsFilePeriodicReadWithoutEvents(t *testing.T) {
	file := filepath.Join(t.TempDir(), "credentials")
	writeSharedCreds(t, file, nodeCredsA)
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p, err := NewSharedCredentialsFile(t.Context(), SharedCredentialsOptions{File: file, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	writeSharedCreds(t, file, nodeCredsB)
	c := mustRetrieve(t, p)
	if c.AccessKeyID != nodeCredsA.AccessKeyID || !c.CanExpire || !c.Expires.Equal(now.Add(time.Minute)) {
		t.Fatalf("before the interval: %+v", c)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if c := mustRetrieve(t, p); c.AccessKeyID != nodeCredsB.AccessKeyID {
		t.Fatalf("after the interval: %s", c.AccessKeyID)
	}
}

func TestSharedCredentialsFileRefusesLongIntervals(t *testing.T) {
	_, err := NewSharedCredentialsFile(t.Context(), SharedCredentialsOptions{File: "x", Interval: 2 * time.Minute})
	if err == nil || !strings.Contains(err.Error(), "longer than 1m0s") {
		t.Fatalf("err = %v", err)
	}
}

func metricNumber(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// The upstream chart's hybrid DaemonSets mount the node's .aws directory at /root/.aws and set no
// AWS_SHARED_CREDENTIALS_FILE (charts/eks-pod-identity-agent/values.yaml, daemonsets.hybrid): the
// file is then the SDK's default, $HOME/.aws/credentials.
func TestSharedCredentialsFileDefaultsToTheSDKsFile(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.Mkdir(filepath.Join(home, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(home, ".aws", "credentials")
	writeSharedCreds(t, file, nodeCredsA)
	p, err := NewSharedCredentialsFile(t.Context(), SharedCredentialsOptions{lookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if p.File() != file || mustRetrieve(t, p).AccessKeyID != nodeCredsA.AccessKeyID {
		t.Fatalf("file %s, err %v", p.File(), p.Err())
	}
}

// runSharedCredentials runs p until the test ends, waits until it watches the file, and returns
// an EKS Auth endpoint and a client that signs with p's keys.
func runSharedCredentials(t *testing.T, p *SharedCredentialsFile) (*awstest.Server, *Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(ctx) })
	<-p.watching
	t.Cleanup(func() { cancel(); wg.Wait() })
	s := rotationEndpoint(t)
	cfg := s.Config()
	cfg.Credentials = p
	c, err := NewFromConfig(cfg, withoutEnv, func(o *Options) { o.Retryer = authTestFastRetryer(1) })
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}
