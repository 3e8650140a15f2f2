package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/impersonation/rbac"
)

// ConsoleAccess grants two IAM ARNs different read-only console access and shows, through the
// proxy's socket, what each can and cannot see.
func (d *Demo) ConsoleAccess(ctx context.Context) error {
	d.t.heading("Console access for two IAM ARNs, shown through the proxy's socket")
	for _, ns := range []string{"team-a", "team-b"} {
		if _, err := d.Env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		// No controller manager runs here, so the namespace's default service account is created by hand.
		if _, err := d.Env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: ns + "-web", Namespace: ns},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "public.ecr.aws/nginx/nginx:stable"}}}}
		if _, err := d.Env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	alice, err := rbac.ConsoleRBAC(rbac.ConsoleOptions{ARNs: []string{AliceARN}, Namespaces: []string{"team-a"}, Name: "console-team-a"})
	if err != nil {
		return err
	}
	bob, err := rbac.ConsoleRBAC(rbac.ConsoleOptions{ARNs: []string{BobARN}, Name: "console-auditors"})
	if err != nil {
		return err
	}
	if err := rbac.Apply(ctx, d.Env.Config, alice.Merge(bob), rbac.ApplyOptions{}); err != nil {
		return err
	}
	d.t.call("impersonation/rbac.ConsoleRBAC: %s read-only in team-a; %s read-only everywhere", AliceARN, BobARN)

	type probe struct {
		who, path string
		want      int
		what      string
		pods      string // for 200: exactly the pods the answer must list
	}
	probes := []probe{
		{AliceARN, "/api/v1/namespaces/team-a/pods", http.StatusOK, "alice lists pods in team-a", "PodList [team-a/team-a-web]"},
		{AliceARN, "/api/v1/namespaces/team-b/pods", http.StatusForbidden, "alice lists pods in team-b", ""},
		{AliceARN, "/api/v1/pods", http.StatusForbidden, "alice lists pods cluster-wide", ""},
		{BobARN, "/api/v1/pods", http.StatusOK, "bob lists pods cluster-wide", "PodList [team-a/team-a-web team-b/team-b-web]"},
		{BobARN, "/api/v1/namespaces/team-a/secrets", http.StatusForbidden, "bob lists Secrets", ""},
		{MalloryARN, "/api/v1/namespaces/team-a/pods", http.StatusForbidden, "mallory (not granted) lists pods", ""},
		{"system:masters", "/api/v1/pods", http.StatusForbidden, "identity \"system:masters\"", ""},
		{"", "/api/v1/pods", http.StatusUnauthorized, "no identity", ""},
	}
	client := d.socketClient()
	for _, p := range probes {
		var got int
		var body string
		// RBAC changes reach the API server's authorizer within moments; poll briefly.
		deadline := time.Now().Add(10 * time.Second)
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://connector"+p.path, nil)
			if p.who != "" {
				req.Header.Set("x-aws-eks-identity-arn", p.who)
			}
			// Spoofing attempts ride along on every request; the proxy strips them.
			req.Header.Set("Impersonate-Group", "system:masters")
			req.Header.Set("Connection", "Impersonate-User")
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			b := make([]byte, 64<<10)
			n, _ := readFull(resp, b)
			got, body = resp.StatusCode, string(b[:n])
			if got == p.want || time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		if got != p.want {
			return fmt.Errorf("%s: GET %s got %d, want %d: %s", p.what, p.path, got, p.want, body)
		}
		detail := statusMessage(body)
		if got == http.StatusOK {
			detail = podNames(body)
			if detail != p.pods {
				return fmt.Errorf("%s: GET %s answered %s, want %s", p.what, p.path, detail, p.pods)
			}
		}
		d.t.note("%-40s %d  %s", p.what+":", got, detail)
	}
	d.t.ok("every ARN sees exactly what its RBAC allows; spoofed Impersonate-Group and Connection headers had no effect")
	return nil
}

func readFull(resp *http.Response, b []byte) (int, error) {
	defer resp.Body.Close()
	n := 0
	for n < len(b) {
		m, err := resp.Body.Read(b[n:])
		n += m
		if err != nil {
			break
		}
	}
	return n, nil
}

// statusMessage extracts the message of a metav1.Status body.
func statusMessage(body string) string {
	var st metav1.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Kind != "Status" {
		if len(body) > 120 {
			body = body[:120] + "…"
		}
		return body
	}
	msg := st.Message
	if len(msg) > 160 {
		msg = msg[:160] + "…"
	}
	return fmt.Sprintf("Status %s: %s", st.Reason, msg)
}

// podNames lists the pods of a PodList body.
func podNames(body string) string {
	var list corev1.PodList
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return "(not a PodList)"
	}
	names := make([]string, 0, len(list.Items))
	for _, p := range list.Items {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	return fmt.Sprintf("PodList %v", names)
}
