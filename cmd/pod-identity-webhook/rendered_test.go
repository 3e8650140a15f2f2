package main

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/manifest"
	"github.com/ekslink/ekslink/podidentity/association"
	"github.com/ekslink/ekslink/webhook"
)

// The webhook as manifest.RenderWebhook deploys it, on the real API server: the rendered objects
// apply server-side; the binary runs with the rendered Deployment's arguments, authenticated as the
// rendered ServiceAccount (a TokenRequest token), so the rendered RBAC is all it has; the API
// server calls it through the rendered MutatingWebhookConfiguration and Service and mutates pods.
// The one difference from a cluster: the Service is ExternalName localhost (the test control
// plane has no kube-proxy or pod network), on a free port instead of 443 (ServicePort).
func TestRenderedDeploymentRunsWithItsOwnRBAC(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns, appNS, assocNS := env.Namespace(t), env.Namespace(t), env.Namespace(t)
	port, metricsPort := freePort(t), freePort(t)
	name := "piw-" + ns // cluster-scoped objects: unique per test
	objs, err := manifest.RenderWebhook(manifest.WebhookOptions{
		Namespace: ns, Name: name, WatchConfigMap: true, PodIdentityAssociations: assocNS + "/assoc",
		Port: int32(port), MetricsPort: int32(metricsPort), ServicePort: int32(port),
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: appNS}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, o := range objs {
		if svc, ok := o.(*corev1.Service); ok {
			svc.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"}
		}
		if d, ok := o.(*appsv1.Deployment); ok {
			d.Spec.Replicas = new(int32) // no node runs it here: the test runs the binary itself
			args = d.Spec.Template.Spec.Containers[0].Args
		}
	}
	us, err := manifest.Unstructured(objs)
	if err != nil {
		t.Fatal(err)
	}
	if err := manifest.Apply(ctx, env.Config, us, manifest.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	mwcs := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	t.Cleanup(func() {
		_ = mwcs.Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = env.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = env.Client.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	sa := envtest.ServiceAccountSubject(ns, name)
	env.WaitAllowed(t, sa, ns, "update", "", "secrets", manifest.WebhookCertSecretName(name))
	env.WaitAllowed(t, sa, "", "update", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", name)
	env.WaitAllowed(t, sa, ns, "watch", "", "configmaps", manifest.WebhookConfigMapName)
	env.WaitAllowed(t, sa, "", "watch", "", "serviceaccounts", "")
	env.WaitAllowed(t, sa, assocNS, "watch", "", "configmaps", "assoc")

	token := env.Token(t, ns, name, nil, time.Hour)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: env.URL, CertificateAuthorityData: env.CAPEM}
	cfg.AuthInfos["webhook"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "webhook"}
	cfg.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}

	// Service accounts: annotated, mapped through the ConfigMap, associated (container
	// credentials), and one with an unusable ARN.
	role := "arn:aws:iam::111122223333:role/rendered"
	for sa, ann := range map[string]map[string]string{
		"annotated":  {"eks.amazonaws.com/role-arn": role},
		"mapped":     nil,
		"associated": nil,
		"invalid":    {"eks.amazonaws.com/role-arn": "not-an-arn"},
	} {
		if _, err := env.Client.CoreV1().ServiceAccounts(appNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Annotations: ann}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mappedRole := "arn:aws:iam::111122223333:role/mapped"
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: manifest.WebhookConfigMapName},
		Data: map[string]string{webhook.ConfigMapKey: `{"` + appNS + `/mapped":{"RoleARN":"` + mappedRole + `"}}`}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	if _, err := association.NewStore(env.Client, association.Options{Namespace: assocNS, Name: "assoc"}).Create(ctx,
		association.Association{Namespace: appNS, ServiceAccount: "associated", RoleARN: role}); err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	root := newRootCommand()
	root.SetArgs(append(args, "--kubeconfig="+kubeconfig))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	pod := func(sa string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: sa + "-", Namespace: appNS},
			Spec: corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "main", Image: "public.ecr.aws/docker/library/busybox:stable"}}}}
	}
	roleOf := func(p *corev1.Pod) string {
		for _, e := range p.Spec.Containers[0].Env {
			if e.Name == webhook.EnvRoleARN {
				return e.Value
			}
		}
		return ""
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := env.Client.CoreV1().Pods(appNS).Create(ctx, pod("annotated"), metav1.CreateOptions{})
		if err == nil && roleOf(p) == role {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the webhook exited with its rendered arguments and RBAC: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pods are not mutated through the rendered configuration after 30s (last error %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The ConfigMap (read through the one-ConfigMap Role) maps a service account with no
	// annotation. It loads asynchronously after /readyz on a fresh cache; allow a moment.
	deadline = time.Now().Add(10 * time.Second)
	for {
		p, err := env.Client.CoreV1().Pods(appNS).Create(ctx, pod("mapped"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if roleOf(p) == mappedRole {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a pod of the ConfigMap-mapped service account is not mutated: env %v", p.Spec.Containers[0].Env)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The associations ConfigMap (read through the Role in its own namespace): container
	// credentials for the associated service account.
	deadline = time.Now().Add(10 * time.Second)
	for {
		p, err := env.Client.CoreV1().Pods(appNS).Create(ctx, pod("associated"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Labels[webhook.PodIdentityLabel] == "enabled" && len(p.Spec.Containers[0].Env) > 0 &&
			p.Spec.Containers[0].Env[0].Name == webhook.EnvContainerCredentialsURI {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a pod of the associated service account is not mutated: labels %v env %v", p.Labels, p.Spec.Containers[0].Env)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// An unusable annotation: the pod is admitted unmutated and an Event (create events) says why.
	p, err := env.Client.CoreV1().Pods(appNS).Create(ctx, pod("invalid"), metav1.CreateOptions{})
	if err != nil || roleOf(p) != "" {
		t.Fatalf("invalid annotation: err %v env %v", err, p.Spec.Containers[0].Env)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		evs, err := env.Client.CoreV1().Events(appNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range evs.Items {
			found = found || (ev.Reason == webhook.EventReasonInvalidAnnotation && ev.InvolvedObject.Name == "invalid")
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no Warning Event for the invalid annotation: the rendered RBAC must allow creating events")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Self-managed certificates: the rendered empty Secret now holds them, and the caBundle is set.
	sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, manifest.WebhookCertSecretName(name), metav1.GetOptions{})
	if err != nil || len(sec.Data[webhook.SecretKeyCABundle]) == 0 {
		t.Fatalf("certificate Secret: %v %v", err, sec)
	}
	mwc, err := mwcs.Get(ctx, name, metav1.GetOptions{})
	if err != nil || string(mwc.Webhooks[0].ClientConfig.CABundle) != string(sec.Data[webhook.SecretKeyCABundle]) {
		t.Fatalf("caBundle not set from the Secret: %v", err)
	}

	// Minimal: with the same token, everything beyond its needs is forbidden.
	c := env.ClientForToken(t, token)
	forbidden := map[string]error{}
	_, forbidden["create a Secret"] = c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{})
	_, forbidden["list Secrets"] = c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	_, forbidden["get another Secret"] = c.CoreV1().Secrets(ns).Get(ctx, "other", metav1.GetOptions{})
	forbidden["delete its Secret"] = c.CoreV1().Secrets(ns).Delete(ctx, manifest.WebhookCertSecretName(name), metav1.DeleteOptions{})
	_, forbidden["get another ConfigMap"] = c.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	_, forbidden["list ConfigMaps"] = c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	_, forbidden["list ConfigMaps beside the associations"] = c.CoreV1().ConfigMaps(assocNS).List(ctx, metav1.ListOptions{})
	_, forbidden["get a ConfigMap beside the associations"] = c.CoreV1().ConfigMaps(assocNS).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	_, forbidden["update the associations"] = c.CoreV1().ConfigMaps(assocNS).Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "assoc"}}, metav1.UpdateOptions{})
	_, forbidden["get another webhook configuration"] = c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "other", metav1.GetOptions{})
	_, forbidden["list webhook configurations"] = c.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	forbidden["delete its webhook configuration"] = c.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, name, metav1.DeleteOptions{})
	_, forbidden["update a service account"] = c.CoreV1().ServiceAccounts(appNS).Update(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "annotated"}}, metav1.UpdateOptions{})
	_, forbidden["list pods"] = c.CoreV1().Pods(appNS).List(ctx, metav1.ListOptions{})
	_, forbidden["list events"] = c.CoreV1().Events(appNS).List(ctx, metav1.ListOptions{})
	for what, err := range forbidden {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v, want Forbidden (the rendered RBAC must be minimal)", what, err)
		}
	}
	// Its own (for contrast): allowed with the same token.
	if _, err := c.CoreV1().Secrets(ns).Get(ctx, manifest.WebhookCertSecretName(name), metav1.GetOptions{}); err != nil {
		t.Errorf("get its own Secret: %v", err)
	}
	if !strings.Contains(strings.Join(args, " "), "--cert-secret="+ns+"/") || !strings.Contains(strings.Join(args, " "), "--port="+strconv.Itoa(port)) {
		t.Errorf("rendered args %q", args)
	}
}
