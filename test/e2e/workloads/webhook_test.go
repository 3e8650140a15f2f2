package workloads_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/ekslink/ekslink/charts"
	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/manifest"
	"github.com/ekslink/ekslink/oidc"
	"github.com/ekslink/ekslink/test/e2e/node"
)

// The IRSA workload of the webhook test: seed 002's service account, annotated with the role, and
// one without the annotation.
const (
	irsaNamespace = "irsa"
	irsaSA        = "s3-echoer"
	plainSA       = "plain"
	irsaRoleName  = "e2e-s3-echoer"
	// What the webhook injects (the upstream's pkg/handler/handler.go: volume aws-iam-token, the
	// token at <mount path>/token, mounted at /var/run/secrets/eks.amazonaws.com/serviceaccount).
	irsaVolume    = "aws-iam-token"
	irsaTokenFile = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
)

// TestWebhook installs the pod identity webhook on a real node, once through the renderer and once
// through the Helm chart (helm install), with the image "make images" builds and its self-managed
// certificates: the webhook creates its CA and serving certificate in its Secret and patches the
// caBundle of its own MutatingWebhookConfiguration, and the API server calls it through its Service
// (at the ready endpoint: the node's API server routes to Service endpoints, see node's
// controlplane.go). In each install the webhook pod is Ready with the rendered probes and security
// context (read-only root file system, non-root, no capabilities); a pod of a service account
// annotated with eks.amazonaws.com/role-arn is stored mutated (AWS_ROLE_ARN,
// AWS_WEB_IDENTITY_TOKEN_FILE, the region, the projected token of audience sts.amazonaws.com) and,
// running the AWS SDK's default chain with that environment (plus AWS_ENDPOINT_URL_STS and
// AWS_CA_BUNDLE from its own spec), trades the token kubelet projected at the local STS
// AssumeRoleWithWebIdentity, which verifies it against the test API server's own issuer discovery
// and JWKS and the role's trust policy, and GetCallerIdentity names the role; a pod of a service
// account without the annotation is stored unmutated (and counted by the webhook as
// not_configured); with the Deployment scaled to 0 a pod is still created, unmutated
// (failurePolicy Ignore).
func TestWebhook(t *testing.T) {
	n := node.Start(t, node.Options{})
	fake, err := awsfake.Start(awsfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	stsURL := n.ServeTLS(t, fake.STS.Server.Config.Handler)
	image := shippedImage(t, n, "pod-identity-webhook")
	roleARN := irsaRole(t, n, fake)

	createNamespace(t, n, irsaNamespace)
	for sa, annotations := range map[string]map[string]string{irsaSA: {oidc.AnnotationRoleARN: roleARN}, plainSA: nil} {
		if _, err := n.Env.Client.CoreV1().ServiceAccounts(irsaNamespace).Create(context.Background(),
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Annotations: annotations}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	check := webhookCheck{n: n, fake: fake, roleARN: roleARN, stsURL: stsURL}

	t.Run("renderer", func(t *testing.T) {
		objs, err := manifest.RenderWebhook(manifest.WebhookOptions{
			Replicas: 1, Image: image, AWSDefaultRegion: fake.Region(), STSRegionalEndpoint: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		applyRendered(t, n, objs)
		check.run(t, manifest.DefaultWebhookNamespace, manifest.DefaultWebhookName, "renderer")
		// The chart installs another webhook next: this one's registration and pods go first.
		if err := n.Env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(),
			manifest.DefaultWebhookName, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		deleteAndWait(t, n, schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
			manifest.DefaultWebhookNamespace, manifest.DefaultWebhookName, manifest.LabelName+"="+manifest.DefaultWebhookName)
	})
	t.Run("helm", func(t *testing.T) {
		const ns, name = "pod-identity-webhook-helm", "pod-identity-webhook-helm"
		repo, tag := splitRef(image)
		helmInstall(t, n, charts.Webhook, "eks-pod-identity-webhook", ns, map[string]any{
			"name":     name,
			"replicas": 1,
			"image":    map[string]any{"repository": repo, "tag": tag},
			"config":   map[string]any{"awsDefaultRegion": fake.Region(), "stsRegionalEndpoint": true},
		})
		check.run(t, ns, name, "helm")
	})
}

// irsaRole sets up the IAM side of self-hosted IRSA for the node's cluster: the API server's own
// issuer discovery made public (the ClusterRoleBinding the Kubernetes documentation gives for
// ServiceAccountIssuerDiscovery: system:service-account-issuer-discovery to
// system:unauthenticated), STS fetching it anonymously (the issuer's name resolved to the API
// server, whose CA it trusts), an IAM OIDC provider for the issuer with client id
// sts.amazonaws.com, and a role whose trust policy (oidc.TrustPolicy) names irsaNamespace/irsaSA.
func irsaRole(t *testing.T, n *node.Node, fake *awsfake.Set) string {
	t.Helper()
	ctx := context.Background()
	if _, err := n.Env.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "service-account-issuer-discovery-public"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:service-account-issuer-discovery"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:unauthenticated"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	client := apiServerIssuerClient(t, n)
	// What STS will fetch, checked the way it fetches it (the binding takes effect asynchronously).
	var published *oidc.Published
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if published, err = oidc.Fetch(ctx, client, n.Env.Issuer); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("the API server's issuer documents, fetched anonymously as STS does: %v", err)
	}
	t.Logf("issuer %s: discovery and JWKS served by the API server (jwks_uri %s)", n.Env.Issuer, published.JWKSURI)
	fake.SetIssuerClient(client)
	providerARN, err := fake.CreateOIDCProvider(awsfake.OIDCProvider{URL: n.Env.Issuer, ClientIDs: []string{oidc.DefaultAudience}})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := oidc.TrustPolicy(oidc.TrustPolicyOptions{ProviderARN: providerARN, Issuer: n.Env.Issuer, Namespace: irsaNamespace, ServiceAccount: irsaSA})
	if err != nil {
		t.Fatal(err)
	}
	roleARN, err := fake.CreateRole(irsaRoleName, policy)
	if err != nil {
		t.Fatal(err)
	}
	return roleARN
}

// apiServerIssuerClient is an anonymous HTTPS client that reaches the node's API server for every
// host name (the stand-in for the DNS that would resolve the issuer's name) and verifies it with
// the control plane's CA, under the URL's host name as usual.
func apiServerIssuerClient(t *testing.T, n *node.Node) *http.Client {
	t.Helper()
	u, err := url.Parse(n.Env.URL)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(n.Env.CAPEM) {
		t.Fatal("the control plane's CA does not parse")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, u.Host)
		},
	}}
}

type webhookCheck struct {
	n       *node.Node
	fake    *awsfake.Set
	roleARN string
	stsURL  string
}

func (c webhookCheck) run(t *testing.T, ns, name, install string) {
	ctx := context.Background()
	n := c.n
	started := time.Now()
	podName := c.waitPod(t, ns, name)
	pod := n.WaitReady(t, ns, podName, "", 3*time.Minute)
	t.Logf("%s/%s Ready %s after the apply", ns, podName, time.Since(started).Round(time.Millisecond))
	sc := pod.Spec.Containers[0].SecurityContext
	if sc == nil || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) || !ptr.Deref(sc.RunAsNonRoot, false) ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" ||
		pod.Spec.Containers[0].ReadinessProbe == nil || pod.Spec.Containers[0].LivenessProbe == nil {
		t.Errorf("the webhook pod runs without the shipped security context or probes: %+v", pod.Spec.Containers[0])
	}

	// Self-managed certificates: the Secret holds the CA, which is the caBundle of the webhook.
	sec, err := n.Env.Client.CoreV1().Secrets(ns).Get(ctx, manifest.WebhookCertSecretName(name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mwc, err := n.Env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sec.Data["ca.crt"]) == 0 || !bytes.Equal(mwc.Webhooks[0].ClientConfig.CABundle, sec.Data["ca.crt"]) {
		t.Fatalf("the caBundle of %s is not the CA of Secret %s/%s (%d bytes of caBundle, %d of ca.crt)",
			name, ns, sec.Name, len(mwc.Webhooks[0].ClientConfig.CABundle), len(sec.Data["ca.crt"]))
	}

	// The API server loads the patched configuration asynchronously: dry runs until it calls the
	// webhook.
	app := c.irsaPod("irsa-"+install, irsaSA)
	called := time.Now()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got, err := n.Env.Client.CoreV1().Pods(irsaNamespace).Create(ctx, app, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatal(err)
		}
		if envValue(got.Spec.Containers[0], oidc.EnvRoleARN) != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pod of %s/%s mutated 30 s after the webhook was Ready\n--- webhook\n%s", irsaNamespace, irsaSA, n.PodLog(t, ns, podName, ""))
		}
	}
	t.Logf("the API server calls the webhook %s after it was Ready", time.Since(called).Round(time.Millisecond))

	// The pod of the annotated service account: stored mutated, and the SDK in it gets the role.
	calls := c.fake.WebIdentityCalls()
	stored, err := n.Env.Client.CoreV1().Pods(irsaNamespace).Create(ctx, app, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctr := stored.Spec.Containers[0]
	for k, want := range map[string]string{
		"AWS_ROLE_ARN": c.roleARN, "AWS_WEB_IDENTITY_TOKEN_FILE": irsaTokenFile,
		"AWS_REGION": c.fake.Region(), "AWS_DEFAULT_REGION": c.fake.Region(), "AWS_STS_REGIONAL_ENDPOINTS": "regional",
	} {
		if got := envValue(ctr, k); got != want {
			t.Errorf("stored pod %s: %s=%q, want %q", stored.Name, k, got, want)
		}
	}
	if !hasTokenVolume(stored) {
		t.Errorf("stored pod %s has no projected %s volume of audience %s mounted at %s: %+v", stored.Name, irsaVolume, oidc.DefaultAudience, irsaTokenFile, stored.Spec.Volumes)
	}
	done := n.WaitPhase(t, irsaNamespace, app.Name, corev1.PodSucceeded)
	out := n.PodLog(t, irsaNamespace, app.Name, "")
	t.Logf("workload %s (done %s after the create):\n%s", app.Name, done.Status.ContainerStatuses[0].State.Terminated.FinishedAt.Sub(stored.CreationTimestamp.Time), out)
	if !strings.Contains(out, "credentials source WebIdentityCredentials ") {
		t.Errorf("the workload's credentials did not come from the web identity provider:\n%s", out)
	}
	if want := "caller arn:aws:sts::" + c.fake.AccountID() + ":assumed-role/" + irsaRoleName + "/"; !strings.Contains(out, want) {
		t.Errorf("the workload's credentials are not those of role %s (want %q):\n%s", irsaRoleName, want, out)
	}
	if got := c.fake.WebIdentityCalls(); got != calls+1 {
		t.Errorf("AssumeRoleWithWebIdentity calls: %d before the workload, %d after, want one more", calls, got)
	}

	// A service account without the annotation: the webhook is called, and leaves the pod alone.
	before := notConfigured(t, n, ns, podName)
	plain, err := n.Env.Client.CoreV1().Pods(irsaNamespace).Create(ctx, c.irsaPod("plain-"+install, plainSA), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if envValue(plain.Spec.Containers[0], oidc.EnvRoleARN) != "" || hasTokenVolume(plain) || len(plain.Spec.Containers[0].Env) != len(app.Spec.Containers[0].Env) {
		t.Errorf("the pod of %s (no role-arn annotation) was mutated: %+v", plainSA, plain.Spec)
	}
	if after := notConfigured(t, n, ns, podName); after != before+1 {
		t.Errorf("ekslink_webhook_mutations_total{result=\"not_configured\"}: %v before the pod of %s, %v after: the webhook did not see it", before, plainSA, after)
	}

	// The webhook down: pods are still created (failurePolicy Ignore), unmutated.
	scale, err := n.Env.Client.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 0
	if _, err := n.Env.Client.AppsV1().Deployments(ns).UpdateScale(ctx, name, scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(250 * time.Millisecond) {
		pods, err := n.Env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: manifest.LabelName + "=" + name})
		if err == nil && len(pods.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook pods left a minute after scaling %s/%s to 0", ns, name)
		}
	}
	created := time.Now()
	down, err := n.Env.Client.CoreV1().Pods(irsaNamespace).Create(ctx, c.irsaPod("down-"+install, irsaSA), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a pod with the webhook scaled to 0: %v (failurePolicy Ignore must admit it)", err)
	}
	t.Logf("with the webhook scaled to 0, a pod of %s created in %s, unmutated", irsaSA, time.Since(created).Round(time.Millisecond))
	if envValue(down.Spec.Containers[0], oidc.EnvRoleARN) != "" || hasTokenVolume(down) {
		t.Errorf("a pod created with no webhook running was mutated: %+v", down.Spec)
	}
}

// waitPod returns the name of the Deployment's one pod.
func (c webhookCheck) waitPod(t *testing.T, ns, name string) string {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		pods, err := c.n.Env.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: manifest.LabelName + "=" + name})
		if err == nil && len(pods.Items) == 1 {
			return pods.Items[0].Name
		}
		if time.Now().After(deadline) {
			t.Fatalf("no single pod of Deployment %s/%s a minute after the apply (%v)", ns, name, err)
		}
	}
}

// irsaPod runs cmd/aws-credentials (the SDK's default chain, then GetCallerIdentity) in the
// service account, as a workload written for IRSA would: it sets only where the local STS is
// (AWS_ENDPOINT_URL_STS, its CA in the service-account ca.crt); the role, the token file and the
// region come from the webhook.
func (c webhookCheck) irsaPod(name, sa string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: irsaNamespace},
		Spec: corev1.PodSpec{
			ServiceAccountName:            sa,
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "app",
				Image:           c.n.Image("aws-credentials"),
				ImagePullPolicy: corev1.PullNever,
				Env: []corev1.EnvVar{
					{Name: "AWS_EC2_METADATA_DISABLED", Value: "true"},
					{Name: "AWS_ENDPOINT_URL_STS", Value: c.stsURL},
					{Name: "AWS_CA_BUNDLE", Value: saCABundle},
				},
				SecurityContext: &corev1.SecurityContext{
					ReadOnlyRootFilesystem:   ptr.To(true),
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// hasTokenVolume reports whether the pod has the webhook's projected token (audience
// sts.amazonaws.com) mounted where AWS_WEB_IDENTITY_TOKEN_FILE points.
func hasTokenVolume(p *corev1.Pod) bool {
	volume := false
	for _, v := range p.Spec.Volumes {
		if v.Name == irsaVolume && v.Projected != nil && len(v.Projected.Sources) == 1 && v.Projected.Sources[0].ServiceAccountToken != nil &&
			v.Projected.Sources[0].ServiceAccountToken.Audience == oidc.DefaultAudience && v.Projected.Sources[0].ServiceAccountToken.Path == "token" {
			volume = true
		}
	}
	for _, m := range p.Spec.Containers[0].VolumeMounts {
		if volume && m.Name == irsaVolume && m.MountPath+"/token" == irsaTokenFile && m.ReadOnly {
			return true
		}
	}
	return false
}

// notConfigured reads ekslink_webhook_mutations_total{result="not_configured"} from the webhook
// pod's /metrics (through the API server's pod proxy, which dials the pod's address).
func notConfigured(t *testing.T, n *node.Node, ns, pod string) float64 {
	t.Helper()
	raw, err := n.Env.Client.CoreV1().Pods(ns).ProxyGet("http", pod, strconv.Itoa(manifest.DefaultWebhookMetricsPort), "/metrics", nil).DoRaw(context.Background())
	if err != nil {
		t.Fatalf("reading the webhook's /metrics: %v", err)
	}
	var sum float64
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "ekslink_webhook_mutations_total{") && strings.Contains(line, `result="not_configured"`) {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v); err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			sum += v
		}
	}
	return sum
}
