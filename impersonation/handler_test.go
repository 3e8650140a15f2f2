package impersonation

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
)

// rawRequest sends bytes as they are (Go's client refuses control characters and duplicate
// handling we want to exercise) and returns the parsed response.
func rawRequest(t *testing.T, proxyURL string, headerLines []string) *http.Response {
	t.Helper()
	u, _ := url.Parse(proxyURL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	b.WriteString("GET /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: proxy\r\n")
	for _, l := range headerLines {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestBadIdentitiesNeverReachTheUpstream(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	cfg, _ := upstreamConfig(t, up, "proxy-token")
	reg := prometheus.NewRegistry()
	h := newTestHandler(t, Config{Upstream: cfg, Registerer: reg})
	proxy := serveHandler(t, h)

	tests := []struct {
		name    string
		headers []string
		codes   []int // acceptable status codes
	}{
		{"missing identity is refused", nil, []int{401}},
		{"empty identity is refused", []string{"x-aws-eks-identity-arn:"}, []int{401}},
		{"blank identity is refused", []string{"x-aws-eks-identity-arn:    "}, []int{401}},
		{"duplicate identity is refused", []string{"x-aws-eks-identity-arn: " + testUserARN, "X-AWS-EKS-IDENTITY-ARN: arn:aws:iam::123456789012:user/bob"}, []int{401}},
		{"identical duplicate identity is refused", []string{"x-aws-eks-identity-arn: " + testUserARN, "x-aws-eks-identity-arn: " + testUserARN}, []int{401}},
		{"comma-joined identities are refused", []string{"x-aws-eks-identity-arn: " + testUserARN + ", arn:aws:iam::123456789012:user/bob"}, []int{401}},
		{"system:masters is refused", []string{"x-aws-eks-identity-arn: system:masters"}, []int{403}},
		{"SYSTEM: in any case is refused", []string{"x-aws-eks-identity-arn: SyStEm:Masters"}, []int{403}},
		{"service account name is refused", []string{"x-aws-eks-identity-arn: system:serviceaccount:kube-system:default"}, []int{403}},
		{"control character is refused", []string{"x-aws-eks-identity-arn: arn:aws:iam::123456789012:user/a\x01b"}, []int{400, 401}},
		{"DEL is refused", []string{"x-aws-eks-identity-arn: arn:aws:iam::123456789012:user/a\x7fb"}, []int{400, 401}},
		{"tab inside is refused", []string{"x-aws-eks-identity-arn: arn:aws:iam::123456789012:user/a\tb"}, []int{401}},
		{"non-ASCII is refused", []string{"x-aws-eks-identity-arn: arn:aws:iam::123456789012:user/ällice"}, []int{401}},
		{"10 KB identity is refused", []string{"x-aws-eks-identity-arn: arn:aws:iam::123456789012:user/" + strings.Repeat("a", 10<<10)}, []int{401}},
		{"unknown partition is refused", []string{"x-aws-eks-identity-arn: arn:aws-mars:iam::123456789012:user/alice"}, []int{401}},
		{"region in an IAM ARN is refused", []string{"x-aws-eks-identity-arn: arn:aws:iam:us-east-1:123456789012:user/alice"}, []int{401}},
		{"short account is refused", []string{"x-aws-eks-identity-arn: arn:aws:iam::12345:user/alice"}, []int{401}},
		{"non-principal ARN is refused", []string{"x-aws-eks-identity-arn: arn:aws:s3:::bucket"}, []int{401}},
		{"plain name is refused", []string{"x-aws-eks-identity-arn: alice"}, []int{401}},
		{"identity only in Impersonate-User is refused", []string{"Impersonate-User: " + testUserARN}, []int{401}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := up.count.Load()
			resp := rawRequest(t, proxy, tc.headers)
			ok := false
			for _, c := range tc.codes {
				ok = ok || resp.StatusCode == c
			}
			if !ok {
				t.Fatalf("status %d, want one of %v", resp.StatusCode, tc.codes)
			}
			if resp.StatusCode != 400 { // 400s come from net/http's own header validation
				st := decodeStatus(t, resp)
				if st.Status != "Failure" || st.Message == "" {
					t.Errorf("status body %+v", st)
				}
			}
			if n := up.count.Load() - before; n != 0 {
				t.Fatalf("%d request(s) reached the upstream", n)
			}
		})
	}
	if got := metricValue(h.metrics.rejected.WithLabelValues("reserved")); got != 3 {
		t.Errorf("rejected{reason=reserved} = %v, want 3", got)
	}
}

// By default exactly Impersonate-User is sent, as the EKS Connector does (the only RBAC AWS
// documents allows nothing more); with UserExtras the "arn" and "sessionname" extras too.
func TestUpstreamSeesOnlyTheHeadersWeIntend(t *testing.T) {
	for _, extras := range []bool{false, true} {
		t.Run(fmt.Sprintf("UserExtras=%v", extras), func(t *testing.T) { testUpstreamHeaders(t, extras) })
	}
}

func testUpstreamHeaders(t *testing.T, userExtras bool) {
	up := newRecordingUpstream(t, nil)
	cfg, _ := upstreamConfig(t, up, "proxy-token")
	h := newTestHandler(t, Config{Upstream: cfg, UserExtras: userExtras})
	proxy := serveHandler(t, h)
	client := &http.Client{Transport: &http.Transport{}}

	spoofs := []struct {
		name    string
		headers [][2]string
	}{
		{"no spoofing", nil},
		{"Authorization", [][2]string{{"Authorization", "Bearer attacker"}}},
		{"authorization in mixed case", [][2]string{{"aUtHoRiZaTiOn", "Basic YWRtaW46YWRtaW4="}}},
		{"Proxy-Authorization", [][2]string{{"pRoXy-AuThOrIzAtIoN", "Basic eA=="}}},
		{"Impersonate-User", [][2]string{{"iMpErSoNaTe-UsEr", "system:admin"}}},
		{"Impersonate-Group", [][2]string{{"IMPERSONATE-GROUP", "system:masters"}, {"impersonate-group", "admins"}}},
		{"Impersonate-Uid", [][2]string{{"Impersonate-UID", "0"}}},
		{"Impersonate-Extra-*", [][2]string{{"iMPERSONATE-eXTRA-arn", "arn:aws:iam::999999999999:root"}, {"Impersonate-Extra-Scopes", "all"}}},
		{"X-Remote-*", [][2]string{{"x-ReMoTe-UsEr", "admin"}, {"X-REMOTE-GROUP", "system:masters"}, {"X-Remote-Extra-Foo", "bar"}}},
		{"Forwarded and X-Forwarded-*", [][2]string{{"fOrWaRdEd", "for=10.0.0.1"}, {"X-Forwarded-For", "10.0.0.1"}, {"x-forwarded-host", "evil"}, {"X-FORWARDED-PROTO", "http"}, {"X-Real-IP", "10.0.0.1"}}},
		{"hop-by-hop trick on Impersonate-User", [][2]string{{"Connection", "Impersonate-User"}}},
		{"hop-by-hop trick on Authorization and extras", [][2]string{{"cOnNeCtIoN", "keep-alive, Authorization, Impersonate-Extra-Arn, iMpErSoNaTe-ExTrA-sEsSiOnNaMe"}}},
		{"hop-by-hop trick naming the identity header", [][2]string{{"Connection", "X-Aws-Eks-Identity-Arn"}}},
		{"everything at once", [][2]string{{"Authorization", "Bearer x"}, {"Impersonate-User", "system:admin"}, {"Impersonate-Group", "system:masters"}, {"X-Remote-User", "admin"}, {"Connection", "Impersonate-User, Impersonate-Group"}, {"Keep-Alive", "timeout=5"}, {"Te", "trailers"}}},
	}
	for _, arn := range []string{testUserARN, testSessionARN} {
		for _, sp := range spoofs {
			t.Run(sp.name+" "+arn[strings.LastIndex(arn, ":")+1:], func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodGet, proxy+"/api/v1/namespaces/default/configmaps?limit=1", nil)
				req.Header["x-aws-eks-identity-arn"] = []string{arn} // non-canonical on purpose
				req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
				req.Header.Set("X-Test-Keep", "end-to-end")
				for _, kv := range sp.headers {
					req.Header[kv[0]] = append(req.Header[kv[0]], kv[1])
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				got := up.last(t)
				want := map[string][]string{
					"Authorization":    {"Bearer proxy-token"},
					"Impersonate-User": {arn},
					"Accept":           {"application/json;as=Table;v=v1;g=meta.k8s.io"},
					"X-Test-Keep":      {"end-to-end"},
				}
				if userExtras {
					want["Impersonate-Extra-Arn"] = []string{arn}
				}
				if userExtras && arn == testSessionARN {
					want["Impersonate-Extra-Sessionname"] = []string{"alice@example.com"}
				}
				allowedOther := map[string]bool{"Accept-Encoding": true, "User-Agent": true}
				var names []string
				for k := range got {
					names = append(names, k)
				}
				sort.Strings(names)
				for _, k := range names {
					w, ok := want[k]
					if !ok {
						if !allowedOther[k] {
							t.Errorf("unexpected upstream header %s: %q", k, got[k])
						}
						continue
					}
					if fmt.Sprint(got[k]) != fmt.Sprint(w) {
						t.Errorf("upstream %s = %q, want %q", k, got[k], w)
					}
				}
				for k := range want {
					if _, ok := got[k]; !ok {
						t.Errorf("upstream is missing %s (headers %v)", k, names)
					}
				}
			})
		}
	}
}

func TestRoundTripperRefusesRequestsWithoutIdentity(t *testing.T) {
	var called atomic.Int64
	base := roundTripFunc(func(*http.Request) (*http.Response, error) {
		called.Add(1)
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})
	rt := NewRoundTripper(base)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"no identity in context", context.Background(), ErrNoIdentity},
		{"empty user", WithIdentity(context.Background(), Identity{}), ErrNoIdentity},
		{"system user", WithIdentity(context.Background(), Identity{User: "system:admin"}), ErrReservedIdentity},
		{"system group", WithIdentity(context.Background(), Identity{User: "alice", Groups: []string{"system:masters"}}), ErrReservedIdentity},
		{"control character in extra", WithIdentity(context.Background(), Identity{User: "alice", Extra: map[string][]string{"k": {"a\nb"}}}), ErrInvalidIdentity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(tc.ctx, http.MethodGet, "https://api.example/api", nil)
			_, err := rt.RoundTrip(req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if called.Load() != 0 {
		t.Fatalf("base was called %d times", called.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRoundTripperSetsEscapedLowercaseExtras(t *testing.T) {
	var got http.Header
	rt := NewRoundTripper(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Header
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	}))
	id := Identity{User: "alice", UID: "u-1", Groups: []string{"dev", "ops"}, Extra: map[string][]string{
		"Scopes":                  {"a", "b"},
		"example.org/Team Name%x": {"t"},
	}}
	req, _ := http.NewRequestWithContext(WithIdentity(context.Background(), id), http.MethodGet, "https://api.example/api", nil)
	req.Header["impersonate-extra-scopes"] = []string{"spoofed"}
	if _, err := rt.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Impersonate-User":                                "[alice]",
		"Impersonate-Uid":                                 "[u-1]",
		"Impersonate-Group":                               "[dev ops]",
		"Impersonate-Extra-scopes":                        "[a b]",
		"Impersonate-Extra-example.org%2Fteam%20name%25x": "[t]",
	}
	if len(got) != len(want) {
		t.Errorf("headers %v", got)
	}
	for k, v := range want {
		if fmt.Sprint(got[k]) != v {
			t.Errorf("%s = %v, want %s (all: %v)", k, got[k], v, got)
		}
	}
	if len(req.Header) != 1 {
		t.Errorf("the caller's request was modified: %v", req.Header)
	}
}

func TestUpstreamFailuresBecomeStatusJSON(t *testing.T) {
	t.Run("API server down is 503", func(t *testing.T) {
		up := newRecordingUpstream(t, nil)
		cfg, _ := upstreamConfig(t, up, "tok")
		h := newTestHandler(t, Config{Upstream: cfg})
		proxy := serveHandler(t, h)
		up.srv.Close()
		resp := identityGet(t, proxy, "/api", testUserARN)
		if resp.StatusCode != 503 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if st := decodeStatus(t, resp); st.Reason != "ServiceUnavailable" {
			t.Errorf("reason %q", st.Reason)
		}
		if got := metricValue(h.metrics.upstreamErrors.WithLabelValues("unavailable")); got != 1 {
			t.Errorf("upstream_errors{unavailable} = %v", got)
		}
	})
	t.Run("untrusted certificate is 502", func(t *testing.T) {
		up := newRecordingUpstream(t, nil)
		cfg, dir := upstreamConfig(t, up, "tok")
		// A CA that did not sign the server's certificate.
		dir.update(t, map[string]string{"token": "tok", "ca.crt": string(selfSignedPEM(t))})
		h := newTestHandler(t, Config{Upstream: cfg})
		resp := identityGet(t, serveHandler(t, h), "/api", testUserARN)
		if resp.StatusCode != 502 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		decodeStatus(t, resp)
		if up.count.Load() != 0 {
			t.Fatal("request reached an unverified server")
		}
	})
	t.Run("no response headers in time is 504", func(t *testing.T) {
		release := make(chan struct{})
		up := newRecordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		defer close(release)
		cfg, _ := upstreamConfig(t, up, "tok")
		h := newTestHandler(t, Config{Upstream: cfg, Transport: TransportOptions{ResponseHeaderTimeout: 200 * time.Millisecond}})
		resp := identityGet(t, serveHandler(t, h), "/api", testUserARN)
		if resp.StatusCode != 504 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if st := decodeStatus(t, resp); st.Reason != "Timeout" {
			t.Errorf("reason %q", st.Reason)
		}
	})
}

func identityGet(t testing.TB, proxy, path, arn string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, proxy+path, nil)
	req.Header.Set(DefaultIdentityHeader, arn)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestClientCancellationReachesTheUpstream(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan struct{})
	up := newRecordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
		close(cancelled)
	})
	cfg, _ := upstreamConfig(t, up, "tok")
	h := newTestHandler(t, Config{Upstream: cfg})
	proxy := serveHandler(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, proxy+"/api/v1/pods?watch=true", nil)
	req.Header.Set(DefaultIdentityHeader, testUserARN)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not reach the upstream")
	}
	if got := metricValue(h.metrics.activeStreams.WithLabelValues("watch")); got != 1 {
		t.Errorf("active_streams{watch} = %v, want 1", got)
	}
	cancel()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
	waitFor(t, 5*time.Second, "the stream gauge to drop", func() bool {
		return metricValue(h.metrics.activeStreams.WithLabelValues("watch")) == 0
	})
}

func TestConnectionsAreReusedAndFilesAreNotReadPerRequest(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	cfg, _ := upstreamConfig(t, up, "tok")
	var reads atomic.Int64
	h := newTestHandler(t, Config{Upstream: cfg, Transport: TransportOptions{readFile: func(name string) ([]byte, error) {
		reads.Add(1)
		return defaultReadFile(name)
	}}})
	var newConns, reused atomic.Int64
	traced := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			if info.Reused {
				reused.Add(1)
			} else {
				newConns.Add(1)
			}
		}})
		h.ServeHTTP(w, r.WithContext(ctx))
	})
	proxy := serveHandler(t, traced)
	readsBefore := reads.Load()
	const n = 50
	for i := 0; i < n; i++ {
		resp := identityGet(t, proxy, "/api/v1/namespaces/default/configmaps/x", testUserARN)
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if newConns.Load() != 1 || reused.Load() != n-1 {
		t.Errorf("new connections %d, reused %d; want 1 and %d", newConns.Load(), reused.Load(), n-1)
	}
	if d := reads.Load() - readsBefore; d != 0 {
		t.Errorf("%d file reads during %d requests, want 0", d, n)
	}
}

func TestTokenRotationByDataSwapIsPickedUp(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	cfg, dir := upstreamConfig(t, up, "token-1")
	h := newTestHandler(t, Config{Upstream: cfg, Transport: TransportOptions{ReloadInterval: time.Hour}})
	proxy := serveHandler(t, h)
	identityGet(t, proxy, "/api", testUserARN)
	if got := up.last(t).Get("Authorization"); got != "Bearer token-1" {
		t.Fatalf("Authorization %q", got)
	}
	dir.update(t, map[string]string{"token": "token-2\n", "ca.crt": string(up.caPEM())})
	waitFor(t, 5*time.Second, "the rotated token", func() bool {
		identityGet(t, proxy, "/api", testUserARN)
		return up.last(t).Get("Authorization") == "Bearer token-2"
	})
}

func TestUnauthorizedForcesATokenReread(t *testing.T) {
	var current atomic.Value
	current.Store("token-1")
	up := newRecordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+current.Load().(string) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(200)
	})
	cfg, dir := upstreamConfig(t, up, "token-1")
	// No file watching and no periodic reload: only the 401 can trigger a re-read.
	h := newTestHandler(t, Config{Upstream: cfg, Transport: TransportOptions{ReloadInterval: time.Hour, disableWatch: true}})
	h.transport.creds.now = func() time.Time { return time.Now().Add(time.Hour) } // no rate limit
	proxy := serveHandler(t, h)
	if resp := identityGet(t, proxy, "/api", testUserARN); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	dir.update(t, map[string]string{"token": "token-2", "ca.crt": string(up.caPEM())})
	current.Store("token-2")
	if resp := identityGet(t, proxy, "/api", testUserARN); resp.StatusCode != 200 {
		t.Fatalf("status after rotation %d, want 200 from the retried request", resp.StatusCode)
	}
	if got := up.last(t).Get("Authorization"); got != "Bearer token-2" {
		t.Fatalf("Authorization %q", got)
	}
}

func TestBrokenTokenFileKeepsTheLastGoodToken(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	cfg, dir := upstreamConfig(t, up, "token-1")
	h := newTestHandler(t, Config{Upstream: cfg, Transport: TransportOptions{disableWatch: true}})
	dir.update(t, map[string]string{"token": "  \n", "ca.crt": "not a certificate"})
	if _, err := h.transport.creds.reload("test"); err == nil {
		t.Fatal("reload of an empty token and a bad CA succeeded")
	}
	resp := identityGet(t, serveHandler(t, h), "/api", testUserARN)
	if resp.StatusCode != 200 || up.last(t).Get("Authorization") != "Bearer token-1" {
		t.Fatalf("status %d, Authorization %q", resp.StatusCode, up.last(t).Get("Authorization"))
	}
}

func TestHTTP1UpstreamIsNotBoundByTheConnectionLimit(t *testing.T) {
	const streams = 6
	release := make(chan struct{})
	var inFlight atomic.Int64
	up := newUpstream(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 1 {
			t.Errorf("proto %s", r.Proto)
		}
		inFlight.Add(1)
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-release
	})
	cfg, _ := upstreamConfig(t, up, "tok")
	// A short header timeout: were the streams bound, they would fail in seconds, not hang.
	h := newTestHandler(t, Config{Upstream: cfg, Transport: TransportOptions{MaxConnections: 2, ResponseHeaderTimeout: 5 * time.Second}})
	proxy := serveHandler(t, h)
	// The first request discovers that the upstream speaks only HTTP/1.1.
	resp := identityGet(t, proxy, "/api", testUserARN)
	inFlight.Store(0)
	close(release)
	_, _ = io.Copy(io.Discard, resp.Body)
	release = make(chan struct{})
	defer close(release)
	for i := 0; i < streams; i++ {
		identityGet(t, proxy, "/api/v1/pods?watch=true", testUserARN)
	}
	waitFor(t, 5*time.Second, "all streams to reach the upstream", func() bool { return inFlight.Load() == streams })
}

func TestBodiesAndEncodingsPassThroughUnchanged(t *testing.T) {
	gz := []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xffalready-compressed")
	up := newRecordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if string(body) != `{"spec":{"replicas":3}}` || r.Header.Get("Content-Type") != "application/strategic-merge-patch+json" ||
			r.Header.Get("Content-Encoding") != "identity" || r.Header.Get("Accept-Encoding") != "gzip" {
			t.Errorf("upstream got %q %v", body, r.Header)
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(gz)
	})
	cfg, _ := upstreamConfig(t, up, "tok")
	proxy := serveHandler(t, newTestHandler(t, Config{Upstream: cfg}))
	req, _ := http.NewRequest(http.MethodPatch, proxy+"/apis/apps/v1/namespaces/default/deployments/d", strings.NewReader(`{"spec":{"replicas":3}}`))
	req.Header.Set(DefaultIdentityHeader, testUserARN)
	req.Header.Set("Content-Type", "application/strategic-merge-patch+json")
	req.Header.Set("Content-Encoding", "identity")
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || string(body) != string(gz) {
		t.Fatalf("%d %v %q", resp.StatusCode, resp.Header, body)
	}
}

// Streams are flushed as they arrive: watches and log follows (classified by their query), and any
// other response the API server streams without a Content-Length (for example from an aggregated
// API), which the general proxy path flushes immediately too.
func TestStreamsAreFlushedAsTheyArrive(t *testing.T) {
	for _, path := range []string{
		"/api/v1/namespaces/default/pods/p/log?follow=true",
		"/api/v1/namespaces/default/configmaps?watch=1",
		"/apis/streams.example.com/v1/namespaces/default/feeds/f",
	} {
		t.Run(path, func(t *testing.T) {
			next := make(chan struct{})
			up := newRecordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				for i := 0; i < 3; i++ {
					fmt.Fprintf(w, "line %d\n", i)
					w.(http.Flusher).Flush()
					select {
					case <-next:
					case <-r.Context().Done():
						return
					}
				}
			})
			cfg, _ := upstreamConfig(t, up, "tok")
			proxy := serveHandler(t, newTestHandler(t, Config{Upstream: cfg}))
			resp := identityGet(t, proxy, path, testUserARN)
			type line struct {
				s   string
				err error
			}
			lines := make(chan line)
			go func() {
				br := bufio.NewReader(resp.Body)
				for {
					s, err := br.ReadString('\n')
					lines <- line{s, err}
					if err != nil {
						return
					}
				}
			}()
			for i := 0; i < 3; i++ {
				// Each line must arrive while the upstream is still waiting to write the next one.
				select {
				case l := <-lines:
					if l.err != nil || l.s != fmt.Sprintf("line %d\n", i) {
						t.Fatalf("line %d: %q %v", i, l.s, l.err)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("line %d was not flushed", i)
				}
				next <- struct{}{}
			}
			resp.Body.Close()
			for l := range lines { // let the reader end
				if l.err != nil {
					break
				}
			}
		})
	}
}

func TestRotatedCAIsPickedUpWithoutRestart(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	cfg, dir := upstreamConfig(t, up, "tok")
	dir.update(t, map[string]string{"token": "tok", "ca.crt": string(selfSignedPEM(t))})
	h := newTestHandler(t, Config{Upstream: cfg})
	proxy := serveHandler(t, h)
	if resp := identityGet(t, proxy, "/api", testUserARN); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d with the wrong CA", resp.StatusCode)
	}
	dir.update(t, map[string]string{"token": "tok", "ca.crt": string(up.caPEM())})
	waitFor(t, 5*time.Second, "the rotated CA", func() bool {
		return identityGet(t, proxy, "/api", testUserARN).StatusCode == http.StatusOK
	})
}

func TestColdBurstDialsOnce(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	cfg, _ := upstreamConfig(t, up, "tok")
	var dials atomic.Int64
	h := newTestHandler(t, Config{Upstream: cfg, Transport: TransportOptions{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}})
	proxy := serveHandler(t, h)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	errs := make(chan error, 40)
	for i := 0; i < cap(errs); i++ {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, proxy+"/api", nil)
			req.Header.Set(DefaultIdentityHeader, testUserARN)
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			errs <- err
		}()
	}
	for i := 0; i < cap(errs); i++ {
		must(t, <-errs)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d dials for a burst of %d requests, want 1", n, cap(errs))
	}
}

// While one request holds the cold-start dial gate (its dial hanging, as against a black-holed
// API server), the requests queued behind it must still end with their own context instead of
// waiting out that dial.
func TestQueuedRequestsHonourTheirContextWhileADialHangs(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	cfg, _ := upstreamConfig(t, up, "tok")
	dialing, unblock := make(chan struct{}, 1), make(chan struct{})
	defer close(unblock)
	tr, err := NewTransport(cfg, TransportOptions{disableWatch: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		select {
		case dialing <- struct{}{}:
		default:
		}
		select {
		case <-unblock:
		case <-ctx.Done():
		}
		return nil, errors.New("dial abandoned")
	}})
	must(t, err)
	defer tr.Close()

	firstCtx, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	first, _ := http.NewRequestWithContext(firstCtx, http.MethodGet, cfg.Host+"/api", nil)
	go func() {
		if resp, err := tr.RoundTrip(first); err == nil {
			resp.Body.Close()
		}
	}()
	<-dialing

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	second, _ := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/api", nil)
	done := make(chan error, 1)
	go func() {
		resp, err := tr.RoundTrip(second)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("queued request ended with %v, want its deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a queued request outlived its context while another request's dial hung")
	}
}

// A burst of requests refused with a rotated-out token: the first 401 re-reads the files, and the
// others, inside the re-read rate limit, must still be retried with the token that re-read (or the
// file watcher) loaded, not handed back as 401s.
func TestUnauthorizedIsRetriedWhenTheTokenChangedMeanwhile(t *testing.T) {
	var current atomic.Value
	current.Store("token-1")
	var h *Handler
	var dir *projectedDir
	var reloaded atomic.Bool
	up := newRecordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+current.Load().(string) {
			w.WriteHeader(200)
			return
		}
		// Someone else (another request's 401, the file watcher) loads the new token while
		// this request is in flight with the old one.
		if reloaded.CompareAndSwap(false, true) {
			if _, err := h.transport.creds.reload("test"); err != nil {
				t.Error(err)
			}
		}
		w.WriteHeader(http.StatusUnauthorized)
	})
	cfg, d := upstreamConfig(t, up, "token-1")
	dir = d
	h = newTestHandler(t, Config{Upstream: cfg, Transport: TransportOptions{ReloadInterval: time.Hour, disableWatch: true}})
	proxy := serveHandler(t, h)
	dir.update(t, map[string]string{"token": "token-2", "ca.crt": string(up.caPEM())})
	current.Store("token-2")
	resp := identityGet(t, proxy, "/api", testUserARN)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200 from the request retried with the token loaded meanwhile", resp.StatusCode)
	}
	if got := up.last(t).Get("Authorization"); got != "Bearer token-2" {
		t.Fatalf("Authorization %q", got)
	}
}

// A request with a body is never sent twice: a 401 re-reads the token but goes back to the client.
func TestUnauthorizedRequestWithABodyIsNotReplayed(t *testing.T) {
	var current atomic.Value
	current.Store("token-1")
	var bodies atomic.Int64
	up := newRecordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			bodies.Add(1)
		}
		if r.Header.Get("Authorization") != "Bearer "+current.Load().(string) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(201)
	})
	cfg, dir := upstreamConfig(t, up, "token-1")
	h := newTestHandler(t, Config{Upstream: cfg, Transport: TransportOptions{ReloadInterval: time.Hour, disableWatch: true}})
	h.transport.creds.now = func() time.Time { return time.Now().Add(time.Hour) } // no rate limit
	proxy := serveHandler(t, h)
	dir.update(t, map[string]string{"token": "token-2", "ca.crt": string(up.caPEM())})
	current.Store("token-2")
	req, _ := http.NewRequest(http.MethodPost, proxy+"/api/v1/namespaces/default/configmaps", strings.NewReader(`{"kind":"ConfigMap"}`))
	req.Header.Set(DefaultIdentityHeader, testUserARN)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || bodies.Load() != 1 {
		t.Fatalf("status %d with the body sent %d times; want the 401 and one send", resp.StatusCode, bodies.Load())
	}
	if h.transport.creds.Token() != "token-2" {
		t.Errorf("the 401 did not re-read the token")
	}
	// The next request uses the new token.
	if resp := identityGet(t, proxy, "/api", testUserARN); resp.StatusCode != 201 {
		t.Fatalf("next request: status %d", resp.StatusCode)
	}
}

// A token that cannot be sent as a header value (a control character or line break inside, as a
// torn in-place write can leave) is not a good token: the last good one stays in use.
func TestUnsendableTokenKeepsTheLastGoodToken(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	cfg, dir := upstreamConfig(t, up, "token-1")
	h := newTestHandler(t, Config{Upstream: cfg, Transport: TransportOptions{disableWatch: true, ReloadInterval: time.Hour}})
	proxy := serveHandler(t, h)
	for _, bad := range []string{"token-2\nX-Injected: 1", "tok\x00en", "two words"} {
		dir.update(t, map[string]string{"token": bad, "ca.crt": string(up.caPEM())})
		if _, err := h.transport.creds.reload("test"); err == nil {
			t.Errorf("reload of %q succeeded", bad)
		}
		resp := identityGet(t, proxy, "/api", testUserARN)
		if resp.StatusCode != 200 || up.last(t).Get("Authorization") != "Bearer token-1" {
			t.Fatalf("after %q: status %d, Authorization %q", bad, resp.StatusCode, up.last(t).Get("Authorization"))
		}
	}
}

// Without credentials of its own the proxy would reach the API server as system:anonymous (and
// basic auth is ignored by the transport): refused at construction, not discovered per request.
func TestTransportRefusesUpstreamsWithoutItsOwnCredentials(t *testing.T) {
	for name, cfg := range map[string]*rest.Config{
		"no credentials":       {Host: "https://api.example"},
		"empty token file":     {Host: "https://api.example", BearerTokenFile: ""},
		"basic auth":           {Host: "https://api.example", Username: "admin", Password: "secret"},
		"basic auth and token": {Host: "https://api.example", BearerToken: "t", Username: "admin", Password: "secret"},
	} {
		if tr, err := NewTransport(cfg, TransportOptions{}); err == nil {
			tr.Close()
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
}

// A hand-built request may have a nil Header (net/http's own transport accepts it); the
// RoundTripper and the Transport must not panic on it.
func TestRequestsWithANilHeaderAreForwarded(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	cfg, _ := upstreamConfig(t, up, "tok")
	tr, err := NewTransport(cfg, TransportOptions{disableWatch: true})
	must(t, err)
	defer tr.Close()
	u, _ := url.Parse(cfg.Host + "/api")
	for name, rt := range map[string]http.RoundTripper{"Transport": tr, "RoundTripper": NewRoundTripper(tr)} {
		req := (&http.Request{Method: http.MethodGet, URL: u, Host: u.Host}).WithContext(WithIdentity(context.Background(), Identity{User: testUserARN}))
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || up.last(t).Get("Authorization") != "Bearer tok" {
			t.Fatalf("%s: status %d, headers %v", name, resp.StatusCode, up.last(t))
		}
	}
}

// The built-in mapping's results are remembered per raw identity (bounded); a custom Mapper may
// depend on more than the ARN, so it runs for every request.
func TestIdentitiesAreCachedOnlyForTheBuiltInMapping(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	cfg, _ := upstreamConfig(t, up, "tok")
	var calls atomic.Int64
	custom := newTestHandler(t, Config{Upstream: cfg, Mapper: func(p Principal) (Identity, error) {
		calls.Add(1)
		return DefaultMapper(p)
	}})
	if custom.cache != nil {
		t.Fatal("a custom Mapper got a cache")
	}
	proxy := serveHandler(t, custom)
	for i := 0; i < 3; i++ {
		if resp := identityGet(t, proxy, "/api", testSessionARN); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if calls.Load() != 3 {
		t.Errorf("custom Mapper called %d times for 3 requests", calls.Load())
	}

	h := newTestHandler(t, Config{Upstream: cfg, UserExtras: true})
	proxy = serveHandler(t, h)
	for i := 0; i < 2; i++ {
		if resp := identityGet(t, proxy, "/api", testSessionARN); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	want, _ := ParseARN(testSessionARN)
	if id, ok := h.cache.get(testSessionARN); !ok || id.User != want.ARN || id.Extra[ExtraSessionName][0] != want.SessionName {
		t.Errorf("cached %+v %v", id, ok)
	}
	if resp := identityGet(t, proxy, "/api", "system:masters"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, ok := h.cache.get("system:masters"); ok {
		t.Error("a rejected identity was cached")
	}
	for i := 0; i < 3*identityCacheEntries; i++ {
		h.cache.put(fmt.Sprintf("arn:aws:iam::123456789012:user/u%d", i), Identity{User: "u"})
	}
	h.cache.put(strings.Repeat("a", identityCacheMaxKey+1), Identity{User: "u"})
	if n := len(h.cache.m); n > identityCacheEntries {
		t.Errorf("cache holds %d entries", n)
	}
	if _, ok := h.cache.get(strings.Repeat("a", identityCacheMaxKey+1)); ok {
		t.Error("an over-long key was cached")
	}
}
