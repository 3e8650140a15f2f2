package impersonation

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/streaming/pkg/httpstream/spdy"

	"github.com/ekslink/ekslink/envtest"
)

func TestMain(m *testing.M) { envtest.Main(m) }

// apiFixture is a proxy in front of the real API server, running as service account
// "eks-connector" allowed to impersonate exactly the ARNs in impersonable.
type apiFixture struct {
	env      *envtest.Environment
	ns       string
	h        *Handler
	proxyURL string
	tokens   *projectedDir
	allowed  string // may impersonate, may use configmaps in ns
	denied   string // may impersonate, has no grants
	stranger string // may not be impersonated by the proxy
}

// impersonatorRules is the RBAC AWS documents for the EKS Connector: impersonate on users, limited
// to the ARNs, and nothing else (no userextras: the Handler sends Impersonate-User alone by default).
func impersonatorRules(arns ...string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: arns},
	}
}

func setupAPI(t *testing.T, env *envtest.Environment) *apiFixture {
	t.Helper()
	f := &apiFixture{env: env, ns: env.Namespace(t)}
	f.allowed = "arn:aws:sts::123456789012:assumed-role/Viewer/" + f.ns
	f.denied = "arn:aws:iam::123456789012:user/denied-" + f.ns
	f.stranger = "arn:aws:iam::123456789012:user/stranger-" + f.ns
	env.CreateServiceAccount(t, f.ns, "eks-connector")
	env.Grant(t, "", f.ns+"-impersonator", envtest.ServiceAccountSubject(f.ns, "eks-connector"), impersonatorRules(f.allowed, f.denied))
	env.Grant(t, f.ns, "configmaps", envtest.UserSubject(f.allowed), []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	})
	token := env.Token(t, f.ns, "eks-connector", nil, time.Hour)
	f.tokens = newProjectedDir(t, map[string]string{"token": token, "ca.crt": string(env.CAPEM)})
	f.h = newTestHandler(t, Config{Upstream: &rest.Config{
		Host:            env.URL,
		BearerTokenFile: f.tokens.path("token"),
		TLSClientConfig: rest.TLSClientConfig{CAFile: f.tokens.path("ca.crt")},
	}})
	f.proxyURL = serveHandler(t, f.h)
	return f
}

// clientAs is a clientset that talks to the proxy as arn.
func (f *apiFixture) clientAs(t *testing.T, arn string) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: f.proxyURL, QPS: -1, WrapTransport: identityHeader(arn)})
	must(t, err)
	return c
}

func identityHeader(arn string) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			r = r.Clone(r.Context())
			r.Header.Set(DefaultIdentityHeader, arn)
			return rt.RoundTrip(r)
		})
	}
}

func TestRBACIsTheAPIServersAsTheImpersonatedARN(t *testing.T) {
	f := setupAPI(t, envtest.Shared(t))
	ctx := envtest.Context(t)
	_, err := f.env.Client.CoreV1().ConfigMaps(f.ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{})
	must(t, err)

	t.Run("allowed ARN lists configmaps", func(t *testing.T) {
		list, err := f.clientAs(t, f.allowed).CoreV1().ConfigMaps(f.ns).List(ctx, metav1.ListOptions{})
		must(t, err)
		if len(list.Items) == 0 {
			t.Fatal("empty list")
		}
	})
	t.Run("denied ARN gets the API server's 403", func(t *testing.T) {
		_, err := f.clientAs(t, f.denied).CoreV1().ConfigMaps(f.ns).List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `User "`+f.denied+`"`) {
			t.Fatalf("err = %v, want 403 for the denied user", err)
		}
	})
	t.Run("ARN the proxy may not impersonate gets 403", func(t *testing.T) {
		_, err := f.clientAs(t, f.stranger).CoreV1().ConfigMaps(f.ns).List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "cannot impersonate") {
			t.Fatalf("err = %v, want an impersonation 403", err)
		}
	})
	whoAmI := func(t *testing.T, proxyURL string) selfSubjectUser {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, proxyURL+"/apis/authentication.k8s.io/v1/selfsubjectreviews",
			strings.NewReader(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(DefaultIdentityHeader, f.allowed)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("SelfSubjectReview: %d %s", resp.StatusCode, b)
		}
		var ssr struct {
			Status struct {
				UserInfo selfSubjectUser `json:"userInfo"`
			} `json:"status"`
		}
		must(t, json.NewDecoder(resp.Body).Decode(&ssr))
		for _, g := range ssr.Status.UserInfo.Groups {
			if g != "system:authenticated" {
				t.Errorf("unexpected group %q", g)
			}
		}
		return ssr.Status.UserInfo
	}
	t.Run("the API server sees the ARN as the user and nothing else", func(t *testing.T) {
		if ui := whoAmI(t, f.proxyURL); ui.Username != f.allowed || len(ui.Extra) != 0 {
			t.Fatalf("user info %+v", ui)
		}
	})
	t.Run("with UserExtras, and their RBAC, it also sees the ARN and session as user extras", func(t *testing.T) {
		f.env.Grant(t, "", f.ns+"-extras", envtest.ServiceAccountSubject(f.ns, "eks-connector"), []rbacv1.PolicyRule{
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"userextras/arn", "userextras/sessionname"}, Verbs: []string{"impersonate"}},
		})
		h := newTestHandler(t, Config{UserExtras: true, Upstream: &rest.Config{
			Host:            f.env.URL,
			BearerTokenFile: f.tokens.path("token"),
			TLSClientConfig: rest.TLSClientConfig{CAFile: f.tokens.path("ca.crt")},
		}})
		if ui := whoAmI(t, serveHandler(t, h)); ui.Username != f.allowed || ui.Extra["arn"][0] != f.allowed || ui.Extra["sessionname"][0] != f.ns {
			t.Fatalf("user info %+v", ui)
		}
	})
}

// selfSubjectUser is the userInfo of a SelfSubjectReview.
type selfSubjectUser struct {
	Username string              `json:"username"`
	Groups   []string            `json:"groups"`
	Extra    map[string][]string `json:"extra"`
}

func TestRequestsKeepTheirSemantics(t *testing.T) {
	f := setupAPI(t, envtest.Shared(t))
	ctx := envtest.Context(t)
	c := f.clientAs(t, f.allowed)
	_, err := c.CoreV1().ConfigMaps(f.ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}, Data: map[string]string{"a": "0"}}, metav1.CreateOptions{})
	must(t, err)

	patches := []struct {
		name  string
		pt    types.PatchType
		body  string
		key   string
		opts  metav1.PatchOptions
		value string
	}{
		{"JSON patch", types.JSONPatchType, `[{"op":"add","path":"/data/json","value":"1"}]`, "json", metav1.PatchOptions{}, "1"},
		{"merge patch", types.MergePatchType, `{"data":{"merge":"2"}}`, "merge", metav1.PatchOptions{}, "2"},
		{"strategic merge patch", types.StrategicMergePatchType, `{"data":{"smp":"3"}}`, "smp", metav1.PatchOptions{}, "3"},
		{"server-side apply", types.ApplyPatchType, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"},"data":{"apply":"4"}}`, "apply", metav1.PatchOptions{FieldManager: "test"}, "4"},
	}
	for _, p := range patches {
		t.Run(p.name, func(t *testing.T) {
			cm, err := c.CoreV1().ConfigMaps(f.ns).Patch(ctx, "cm", p.pt, []byte(p.body), p.opts)
			must(t, err)
			if cm.Data[p.key] != p.value {
				t.Fatalf("data %v", cm.Data)
			}
		})
	}

	t.Run("as=Table returns a Table", func(t *testing.T) {
		body, ct := f.get(t, "/api/v1/namespaces/"+f.ns+"/configmaps", "application/json;as=Table;v=v1;g=meta.k8s.io")
		var tbl metav1.Table
		must(t, json.Unmarshal(body, &tbl))
		if tbl.Kind != "Table" || len(tbl.Rows) != 1 || !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("kind %q rows %d content type %q", tbl.Kind, len(tbl.Rows), ct)
		}
	})
	t.Run("protobuf is negotiated", func(t *testing.T) {
		body, ct := f.get(t, "/api/v1/namespaces/"+f.ns+"/configmaps/cm", "application/vnd.kubernetes.protobuf")
		if ct != "application/vnd.kubernetes.protobuf" || !strings.HasPrefix(string(body), "k8s\x00") {
			t.Fatalf("content type %q body %q", ct, body[:min(len(body), 8)])
		}
	})

	t.Run("a watch delivers an event within 100 ms", func(t *testing.T) {
		w, err := c.CoreV1().ConfigMaps(f.ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=cm"})
		must(t, err)
		defer w.Stop()
		var first watch.Event
		select {
		case first = <-w.ResultChan(): // the initial ADDED
		case <-time.After(10 * time.Second):
			t.Fatal("no initial event")
		}
		if first.Type != watch.Added {
			t.Fatalf("first event %v", first.Type)
		}
		var worst time.Duration
		for i := 0; i < 5; i++ {
			_, err := f.env.Client.CoreV1().ConfigMaps(f.ns).Patch(ctx, "cm", types.MergePatchType, []byte(`{"data":{"n":"`+string(rune('a'+i))+`"}}`), metav1.PatchOptions{})
			must(t, err)
			changed := time.Now()
			select {
			case ev := <-w.ResultChan():
				if ev.Type != watch.Modified {
					t.Fatalf("event %v", ev.Type)
				}
				if d := time.Since(changed); d > worst {
					worst = d
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no event")
			}
		}
		t.Logf("slowest event after the write returned: %s", worst)
		if worst > 100*time.Millisecond {
			t.Fatalf("an event took %s", worst)
		}
	})

	t.Run("a forbidden exec upgrade passes the API server's 403 back", func(t *testing.T) {
		hdr := http.Header{}
		hdr.Set(DefaultIdentityHeader, f.allowed)
		d := websocket.Dialer{Subprotocols: []string{"v5.channel.k8s.io"}, HandshakeTimeout: 5 * time.Second}
		_, resp, err := d.Dial("ws"+strings.TrimPrefix(f.proxyURL, "http")+"/api/v1/namespaces/"+f.ns+"/pods/p/exec?command=sh&stdout=true", hdr)
		if err == nil || resp == nil {
			t.Fatalf("upgrade succeeded or failed without a response: %v", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), `"reason":"Forbidden"`) || !strings.Contains(string(body), "pods/exec") {
			t.Fatalf("body %s", body)
		}
	})
}

func TestForbiddenSPDYExecPassesTheAPIServers403Back(t *testing.T) {
	f := setupAPI(t, envtest.Shared(t))
	rt, err := spdy.NewRoundTripper(nil)
	must(t, err)
	req, _ := http.NewRequest(http.MethodPost, f.proxyURL+"/api/v1/namespaces/"+f.ns+"/pods/p/exec?command=sh&stdout=true", nil)
	req.Header.Set(DefaultIdentityHeader, f.allowed)
	req.Header.Set("X-Stream-Protocol-Version", "v4.channel.k8s.io")
	resp, err := rt.RoundTrip(req)
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "pods/exec") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func (f *apiFixture) get(t *testing.T, path, accept string) ([]byte, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.proxyURL+path, nil)
	req.Header.Set(DefaultIdentityHeader, f.allowed)
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	return body, resp.Header.Get("Content-Type")
}

func TestServiceAccountTokenRotationWithoutRestart(t *testing.T) {
	env := envtest.Shared(t)
	f := setupAPI(t, env)
	ctx := envtest.Context(t)
	// Start with the token of an account that may impersonate nobody, then swap in the real one.
	env.CreateServiceAccount(t, f.ns, "nobody")
	f.tokens.update(t, map[string]string{"token": env.Token(t, f.ns, "nobody", nil, time.Hour), "ca.crt": string(env.CAPEM)})
	c := f.clientAs(t, f.allowed)
	waitFor(t, 5*time.Second, "the unprivileged token to be used", func() bool {
		_, err := c.CoreV1().ConfigMaps(f.ns).List(ctx, metav1.ListOptions{})
		return apierrors.IsForbidden(err)
	})
	f.tokens.update(t, map[string]string{"token": env.Token(t, f.ns, "eks-connector", nil, time.Hour), "ca.crt": string(env.CAPEM)})
	waitFor(t, 5*time.Second, "the rotated token to be used", func() bool {
		_, err := c.CoreV1().ConfigMaps(f.ns).List(ctx, metav1.ListOptions{})
		return err == nil
	})
}

func TestAPIServerOutageAndRecovery(t *testing.T) {
	env := envtest.Start(t, &envtest.Environment{})
	f := setupAPI(t, env)
	list := func() *http.Response {
		req, _ := http.NewRequest(http.MethodGet, f.proxyURL+"/api/v1/namespaces/"+f.ns+"/configmaps", nil)
		req.Header.Set(DefaultIdentityHeader, f.allowed)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		must(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := list(); resp.StatusCode != 200 {
		t.Fatalf("status %d before the outage", resp.StatusCode)
	}
	env.StopAPIServer()
	start := time.Now()
	resp := list()
	if resp.StatusCode != 502 && resp.StatusCode != 503 {
		t.Fatalf("status %d during the outage, want 502/503", resp.StatusCode)
	}
	st := decodeStatus(t, resp)
	t.Logf("outage answered in %s: %d %s", time.Since(start), st.Code, st.Message)
	if err := f.h.Ready(context.Background()); err == nil {
		t.Error("Ready succeeded with the API server down")
	}
	must(t, env.StartAPIServer())
	waitFor(t, 20*time.Second, "recovery", func() bool { return list().StatusCode == 200 })
	must(t, f.h.Ready(context.Background()))
}

func TestRealAPIServerConnectionIsReusedWithoutFileReads(t *testing.T) {
	f := setupAPI(t, envtest.Shared(t))
	var reads atomic.Int64
	h := newTestHandler(t, Config{
		Upstream: &rest.Config{Host: f.env.URL, BearerTokenFile: f.tokens.path("token"), TLSClientConfig: rest.TLSClientConfig{CAFile: f.tokens.path("ca.crt")}},
		Transport: TransportOptions{readFile: func(name string) ([]byte, error) {
			reads.Add(1)
			return defaultReadFile(name)
		}},
	})
	var fresh, reused atomic.Int64
	proxy := serveHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			if i.Reused {
				reused.Add(1)
			} else {
				fresh.Add(1)
			}
		}})
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	readsAtStart := reads.Load()
	const n = 20
	for i := 0; i < n; i++ {
		resp := identityGet(t, proxy, "/api/v1/namespaces/"+f.ns+"/configmaps", f.allowed)
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if fresh.Load() != 1 || reused.Load() != n-1 {
		t.Errorf("fresh connections %d, reused %d; want 1 and %d", fresh.Load(), reused.Load(), n-1)
	}
	if d := reads.Load() - readsAtStart; d != 0 {
		t.Errorf("%d file reads during %d requests", d, n)
	}
}
