package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/manifest"
)

// seedARN is the console user of seed 001's YAML. Its 10-digit account is not a valid IAM ARN
// (the proxy refuses it), so the tests substitute real-looking ARNs.
const seedARN = "arn:aws:iam::1234567890:user/Alice"

// createSeedRBAC creates the RBAC objects of a YAML file of seed 001 (copied, as published, in
// impersonation/rbac/testdata) as "kubectl apply -f" does for new objects: a create each, after the
// replacer has substituted names, namespaces and ARNs. The objects are deleted at cleanup.
func createSeedRBAC(t *testing.T, env *envtest.Environment, file string, r *strings.Replacer) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "impersonation", "rbac", "testdata", file))
	must(t, err)
	objs, err := manifest.Decode([]byte(r.Replace(string(raw))))
	must(t, err)
	dyn, err := dynamic.NewForConfig(env.Config)
	must(t, err)
	resources := map[string]string{"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings", "Role": "roles", "RoleBinding": "rolebindings"}
	for _, o := range objs {
		res, ok := resources[o.GetKind()]
		if !ok || o.GetAPIVersion() != "rbac.authorization.k8s.io/v1" {
			t.Fatalf("%s: unexpected %s %s", file, o.GetAPIVersion(), o.GetKind())
		}
		ri := dyn.Resource(rbacv1.SchemeGroupVersion.WithResource(res))
		var c dynamic.ResourceInterface = ri
		if ns := o.GetNamespace(); ns != "" {
			c = ri.Namespace(ns)
		}
		if _, err := c.Create(envtest.Context(t), o, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: creating %s %s: %v", file, o.GetKind(), o.GetName(), err)
		}
		name := o.GetName()
		t.Cleanup(func() { _ = c.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
}

// TestProxyWorksWithTheRBACAWSDocuments is the drop-in contract of eks-connector proxy. The
// connector's service account holds exactly the RBAC AWS documents for the EKS Connector: the
// connector-additional-binding.yaml of seed 001 (the AWS Containers blog post "Connect any
// Kubernetes cluster to Amazon EKS"), verbatim but for names and ARNs: impersonate on users,
// resourceNames = the console user's ARN, and nothing else. What that ARN may do comes from the
// same post's console-restricted-access.yaml (get/list), plus a Role this test adds for watch,
// patch and exec/attach, which the console's read-only RBAC does not grant.
//
// Through the connector's "proxy" command (in-process, on its unix socket), GET, LIST, WATCH, the
// four PATCH types and as=Table succeed, and an ARN without the impersonation grant gets the API
// server's 403. The same RBAC refuses a proxy that sends user extras (what the proxy did by
// default before: every request was a 403 "cannot impersonate ... userextras").
//
// Exec and attach: this harness has no kubelet, so a session cannot be shown end to end. What is
// shown is that the upgrade passes the proxy and the API server's impersonation and RBAC checks
// with this RBAC (the API server then fails to reach the node: a pod bound to a Node object whose
// kubelet port is closed), while the non-granted ARN gets 403 before that.
func TestProxyWorksWithTheRBACAWSDocuments(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	alice := "arn:aws:iam::111122223333:user/Alice"
	mallory := "arn:aws:iam::111122223333:user/Mallory" // same console RBAC, no impersonation grant
	env.CreateServiceAccount(t, ns, "eks-connector")
	env.CreateServiceAccount(t, ns, "default")

	createSeedRBAC(t, env, "connector-additional-binding.yaml", strings.NewReplacer(
		`"`+seedARN+`"`, `"`+alice+`"`,
		"name: eks-connector-service", "name: eks-connector-service-"+ns,
		"namespace: eks-connector", "namespace: "+ns,
	))
	for _, arn := range []string{alice, mallory} {
		createSeedRBAC(t, env, "console-restricted-access.yaml", strings.NewReplacer(
			`"`+seedARN+`"`, `"`+arn+`"`,
			"eks-console-dashboard-restricted-access-", "eks-console-dashboard-restricted-access-"+ns+"-"+strings.ToLower(arn[strings.LastIndex(arn, "/")+1:])+"-",
			"namespace: default", "namespace: "+ns,
		))
		env.Grant(t, ns, "beyond-read-only-"+strings.ToLower(arn[strings.LastIndex(arn, "/")+1:]), envtest.UserSubject(arn), []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"watch", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"pods/exec", "pods/attach"}, Verbs: []string{"get", "create"}},
		})
	}
	sa := envtest.ServiceAccountSubject(ns, "eks-connector")
	env.WaitAllowed(t, sa, "", "impersonate", "", "users", alice)
	env.WaitAllowed(t, envtest.UserSubject(alice), ns, "list", "", "pods", "")

	// A pod bound to a node whose kubelet does not listen.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	kubeletPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	kubelet := fmt.Sprintf("dial tcp 127.0.0.1:%d: connect: connection refused", kubeletPort)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-" + ns}}
	node, err = env.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	must(t, err)
	t.Cleanup(func() {
		_ = env.Client.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{})
	})
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(kubeletPort)
	_, err = env.Client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	must(t, err)
	pod, err := env.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{Name: "web", Image: "public.ecr.aws/nginx/nginx:stable"}}},
	}, metav1.CreateOptions{})
	must(t, err)

	p := startProxyCommand(t, env, ns, proxyHooks{})
	podPath := "/api/v1/namespaces/" + ns + "/pods/web"
	do := func(method, path, arn string, hdr map[string]string, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, "http://connector"+path, strings.NewReader(body))
		req.Header.Set("x-aws-eks-identity-arn", arn)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := p.client.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	t.Run("GET", func(t *testing.T) {
		if code, body := do("GET", podPath, alice, nil, ""); code != 200 || !strings.Contains(body, `"name":"web"`) {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("LIST, and the namespaces and nodes the console navigates by", func(t *testing.T) {
		for _, path := range []string{"/api/v1/namespaces/" + ns + "/pods", "/api/v1/namespaces", "/api/v1/nodes"} {
			if code, body := do("GET", path, alice, nil, ""); code != 200 || !strings.Contains(body, `List"`) {
				t.Errorf("%s: %d %s", path, code, body)
			}
		}
	})
	t.Run("as=Table", func(t *testing.T) {
		code, body := do("GET", "/api/v1/namespaces/"+ns+"/pods", alice, map[string]string{"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}, "")
		if code != 200 || !strings.Contains(body, `"kind":"Table"`) || !strings.Contains(body, `"name":"web"`) {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("WATCH: an event arrives", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://connector/api/v1/namespaces/"+ns+"/pods?watch=true&resourceVersion="+pod.ResourceVersion, nil)
		req.Header.Set("x-aws-eks-identity-arn", alice)
		resp, err := p.client.Do(req)
		must(t, err)
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		_, err = env.Client.CoreV1().Pods(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"metadata":{"labels":{"watched":"yes"}}}`), metav1.PatchOptions{})
		must(t, err)
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || !strings.Contains(line, `"type":"MODIFIED"`) || !strings.Contains(line, `"watched":"yes"`) {
			t.Fatalf("event %q: %v", line, err)
		}
	})
	t.Run("PATCH, all four types", func(t *testing.T) {
		for _, tc := range []struct{ contentType, query, body, label string }{
			{"application/json-patch+json", "", `[{"op":"add","path":"/metadata/labels/json","value":"1"}]`, `"json":"1"`},
			{"application/merge-patch+json", "", `{"metadata":{"labels":{"merge":"1"}}}`, `"merge":"1"`},
			{"application/strategic-merge-patch+json", "", `{"metadata":{"labels":{"strategic":"1"}}}`, `"strategic":"1"`},
			{"application/apply-patch+yaml", "?fieldManager=console", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    apply: \"1\"\n", `"apply":"1"`},
		} {
			code, body := do("PATCH", podPath+tc.query, alice, map[string]string{"Content-Type": tc.contentType}, tc.body)
			if code != 200 || !strings.Contains(body, tc.label) {
				t.Errorf("%s: %d %s", tc.contentType, code, body)
			}
		}
	})
	t.Run("an ARN without the impersonation grant gets the API server's 403", func(t *testing.T) {
		code, body := do("GET", podPath, mallory, nil, "")
		if code != 403 || !impersonationRefused(body, "users") {
			t.Fatalf("%d %s", code, body)
		}
	})

	t.Run("exec over WebSocket passes impersonation and RBAC; only the node is unreachable", func(t *testing.T) {
		c, code, body := wsExec(t, p, "/api/v1/namespaces/"+ns+"/pods/web/exec?command=date&stdout=true&stderr=true", alice)
		if c == nil {
			t.Fatalf("handshake answered %d %s, want 101 (the API server translates WebSocket to SPDY for the kubelet)", code, body)
		}
		defer c.Close()
		if status := wsStatus(t, c); !strings.Contains(status, kubelet) || !strings.Contains(status, "/exec/"+ns+"/web/web") {
			t.Fatalf("status channel %q, want the API server failing to reach the kubelet at %s", status, kubelet)
		}
	})
	t.Run("attach over SPDY passes impersonation and RBAC; only the node is unreachable", func(t *testing.T) {
		code, body := do("POST", "/api/v1/namespaces/"+ns+"/pods/web/attach?stdout=true", alice, map[string]string{
			"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "v4.channel.k8s.io",
		}, "")
		if code == 401 || code == 403 || !strings.Contains(body, "error dialing backend") || !strings.Contains(body, kubelet) {
			t.Fatalf("%d %s, want the API server failing to reach the kubelet at %s", code, body, kubelet)
		}
	})
	t.Run("exec and attach of an ARN without the impersonation grant get 403", func(t *testing.T) {
		if c, code, body := wsExec(t, p, "/api/v1/namespaces/"+ns+"/pods/web/exec?command=date&stdout=true", mallory); c != nil || code != 403 || !impersonationRefused(body, "users") {
			t.Errorf("exec: %d %s", code, body)
		}
		code, body := do("POST", "/api/v1/namespaces/"+ns+"/pods/web/attach?stdout=true", mallory, map[string]string{
			"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "v4.channel.k8s.io",
		}, "")
		if code != 403 || !impersonationRefused(body, "users") {
			t.Errorf("attach: %d %s", code, body)
		}
	})

	// What the proxy did before user extras became opt-in: the documented RBAC refuses it.
	t.Run("a proxy sending user extras is refused by the documented RBAC", func(t *testing.T) {
		q := startProxyCommand(t, env, ns, proxyHooks{}, "--user-extras")
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://connector"+podPath, nil)
		req.Header.Set("x-aws-eks-identity-arn", alice)
		resp, err := q.client.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 403 || !impersonationRefused(string(b), "userextras/arn") {
			t.Fatalf("%d %s, want 403 cannot impersonate userextras", resp.StatusCode, b)
		}
	})
}

// impersonationRefused reports whether a 403 body is the API server refusing the impersonation.
// It names the refused resource ("cannot impersonate resource \"users\"", "userextras/arn") when
// its legacy impersonation check answers first, or the impersonated request ("cannot
// impersonate-on:user-info:get ...") when a constrained-impersonation mode does (KEP-5284; which
// mode answers first depends on what last succeeded for the caller: k8s.io/apiserver
// pkg/endpoints/filters/impersonation/constrained_impersonation.go).
func impersonationRefused(body, resource string) bool {
	return strings.Contains(body, `cannot impersonate resource \"`+resource+`\"`) || strings.Contains(body, "cannot impersonate-on:user-info:")
}

// wsExec opens a v5.channel.k8s.io WebSocket (what kubectl >= 1.31 uses first) through the proxy.
// It returns the connection on a 101, else the status and body of the refusal.
func wsExec(t *testing.T, p *runningProxy, path, arn string) (*websocket.Conn, int, string) {
	t.Helper()
	d := websocket.Dialer{
		Subprotocols:     []string{"v5.channel.k8s.io"},
		HandshakeTimeout: 10 * time.Second,
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", p.socket)
		},
	}
	c, resp, err := d.Dial("ws://connector"+path, http.Header{"X-Aws-Eks-Identity-Arn": {arn}})
	if err == nil {
		return c, http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		t.Fatalf("exec handshake: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return nil, resp.StatusCode, string(b)
}

// wsStatus reads the session until the status channel (3) speaks and returns its message.
func wsStatus(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("session ended without a status: %v", err)
		}
		if len(msg) > 0 && msg[0] == 3 {
			var st metav1.Status
			if err := json.Unmarshal(msg[1:], &st); err != nil {
				return string(msg[1:])
			}
			return st.Message
		}
	}
}
