package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/oidc"
	"github.com/ekslink/ekslink/podidentity/association"
	"github.com/ekslink/ekslink/webhook"
)

// Names of the webhook step.
const (
	IRSASA         = "web-app"
	IRSARoleName   = "web-app"
	webhookNS      = "pod-identity-webhook"
	webhookName    = "pod-identity-webhook"
	webhookSecret  = "pod-identity-webhook-certs"
	webhookConfig  = "pod-identity-webhook"
	irsaPod        = "web-app"
	workloadBinary = "workload"
)

// Webhook runs the pod identity webhook (the real binary, managing its own CA and serving
// certificate) behind a MutatingWebhookConfiguration of the demo's API server; a pod of an
// annotated service account is created and stored mutated; the projected token kubelet would
// mount is requested from the API server as kubelet does; and a workload process runs the AWS SDK
// with the pod's environment: its web identity provider trades the token at STS
// AssumeRoleWithWebIdentity, which checks it against the documents oidc published and the role's
// trust policy, and GetCallerIdentity names the role. A token of another service account is refused.
func (d *Demo) Webhook(ctx context.Context) error {
	d.t.heading("IRSA end to end: the pod identity webhook mutates a pod; the AWS SDK trades its projected token at STS")
	if d.oidcKeys == nil {
		return errors.New("the webhook step needs the OIDC step's keys (run OIDC first)")
	}
	roleARN, err := d.irsaIAM(ctx)
	if err != nil {
		return err
	}
	p, err := d.startWebhook(ctx)
	if err != nil {
		return err
	}
	pod, err := d.createIRSAPod(ctx, roleARN, p)
	if err != nil {
		return err
	}
	env, err := d.podEnvironment(ctx, pod)
	if err != nil {
		return err
	}
	out, err := run(ctx, d.bins[workloadBinary], env)
	if err != nil {
		return fmt.Errorf("the workload with the pod's environment: %w", err)
	}
	var who struct{ ARN, Account, UserID, CredentialSource, Region string }
	if err := json.Unmarshal([]byte(out), &who); err != nil {
		return fmt.Errorf("workload output %q: %w", out, err)
	}
	want := "arn:aws:sts::" + d.AWS.AccountID() + ":assumed-role/" + IRSARoleName + "/"
	if !strings.HasPrefix(who.ARN, want) || who.CredentialSource != "WebIdentityCredentials" {
		return fmt.Errorf("the workload is %s (credentials from %q), want %s<session> from WebIdentityCredentials", who.ARN, who.CredentialSource, want)
	}
	unsigned := 0
	for _, r := range d.AWS.STS.Requests() {
		if strings.Contains(string(r.Body), "Action=AssumeRoleWithWebIdentity") {
			if r.AccessKeyID != "" || r.Header.Get("Authorization") != "" {
				return fmt.Errorf("the SDK signed AssumeRoleWithWebIdentity (access key %s)", r.AccessKeyID)
			}
			unsigned++
		}
	}
	if unsigned != 1 {
		return fmt.Errorf("%d AssumeRoleWithWebIdentity calls, want 1", unsigned)
	}
	d.t.call("workload: config.LoadDefaultConfig + sts:GetCallerIdentity, environment = the pod's + the local STS endpoint and CA")
	d.t.got("%s (credentials from %s, region %s; 1 unsigned AssumeRoleWithWebIdentity call, then a signed GetCallerIdentity)", who.ARN, who.CredentialSource, who.Region)

	// The same pod environment with a token of another service account (same audience, same
	// issuer): the trust policy's sub condition refuses it.
	other, err := d.Env.TokenRequest(ctx, PodNamespace, PodSA, []string{oidc.DefaultAudience}, time.Hour)
	if err != nil {
		return err
	}
	if err := os.WriteFile(d.irsaTokenFile, []byte(other), 0o600); err != nil {
		return err
	}
	out, err = run(ctx, d.bins[workloadBinary], env)
	if err == nil || !strings.Contains(out, "AccessDenied") {
		return fmt.Errorf("a token of %s/%s was not refused with AccessDenied: %v %s", PodNamespace, PodSA, err, out)
	}
	d.t.call("the same workload with a token of %s/%s in the token file", PodNamespace, PodSA)
	d.t.got("refused: %s", firstLine(out, "AccessDenied"))
	d.t.ok("the webhook's patch is all a pod needs: the SDK assumes the role with the projected token")
	return nil
}

// irsaIAM creates the IAM side of self-hosted IRSA: an OIDC provider for the cluster's issuer and
// a role trusting its web-app service account (the trust policy oidc.TrustPolicy writes); STS
// fetches the issuer's documents from a loopback HTTPS server publishing what the OIDC step built.
func (d *Demo) irsaIAM(ctx context.Context) (string, error) {
	h, err := oidc.NewHandler(d.Env.Issuer, d.oidcKeys, oidc.DocumentOptions{JWKSURI: jwksURI})
	if err != nil {
		return "", err
	}
	issuerSrv := httptest.NewTLSServer(h)
	d.closers = append(d.closers, issuerSrv.Close)
	client := awsfake.IssuerClient(issuerSrv)
	published, err := oidc.Fetch(ctx, client, d.Env.Issuer)
	if err != nil {
		return "", fmt.Errorf("fetching the published issuer documents: %w", err)
	}
	if !bytes.Equal(published.Discovery, d.oidcDiscovery) || !bytes.Equal(published.JWKS, d.oidcJWKS) {
		return "", errors.New("the published documents differ from those the OIDC step built")
	}
	d.AWS.SetIssuerClient(client)
	d.t.call("publish the OIDC step's documents at %s (loopback HTTPS; STS resolves the issuer's name to it)", d.Env.Issuer)
	providerARN, err := d.AWS.CreateOIDCProvider(awsfake.OIDCProvider{URL: d.Env.Issuer, ClientIDs: []string{oidc.DefaultAudience}})
	if err != nil {
		return "", err
	}
	policy, err := oidc.TrustPolicy(oidc.TrustPolicyOptions{ProviderARN: providerARN, Issuer: d.Env.Issuer, Namespace: PodNamespace, ServiceAccount: IRSASA})
	if err != nil {
		return "", err
	}
	roleARN, err := d.AWS.CreateRole(IRSARoleName, policy)
	if err != nil {
		return "", err
	}
	d.t.call("iam: OIDC provider %s (client id %s); role %s trusting %s/%s (oidc.TrustPolicy)", providerARN, oidc.DefaultAudience, roleARN, PodNamespace, IRSASA)
	return roleARN, nil
}

// startWebhook runs the pod-identity-webhook binary as its own service account with the minimal
// RBAC docs/webhook.md lists, managing its certificates in a Secret (--cert-secret) and patching
// the caBundle into its MutatingWebhookConfiguration; the API server reaches it through a Service
// (ExternalName localhost: no kube-proxy here) with TLS server name <service>.<namespace>.svc.
func (d *Demo) startWebhook(ctx context.Context) (*process, error) {
	c := d.Env.Client
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: webhookNS}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	if _, err := c.CoreV1().ServiceAccounts(webhookNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: webhookName}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: webhookNS, Name: webhookName}}
	clusterRules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
		{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, ResourceNames: []string{webhookConfig}, Verbs: []string{"get", "update"}},
	}
	nsRules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{webhookSecret}, Verbs: []string{"get", "update"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
	}
	ref := func(kind string) rbacv1.RoleRef {
		return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: webhookName}
	}
	rbac := c.RbacV1()
	for _, err := range []error{
		ignoreExists(rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: webhookName}, Rules: clusterRules}, metav1.CreateOptions{})),
		ignoreExists(rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: webhookName}, RoleRef: ref("ClusterRole"), Subjects: subject}, metav1.CreateOptions{})),
		ignoreExists(rbac.Roles(webhookNS).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: webhookName}, Rules: nsRules}, metav1.CreateOptions{})),
		ignoreExists(rbac.RoleBindings(webhookNS).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: webhookName}, RoleRef: ref("Role"), Subjects: subject}, metav1.CreateOptions{})),
		// The associations ConfigMap, by name, for --watch-pod-identity-associations (step 12).
		ignoreExists(rbac.Roles(association.DefaultNamespace).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: webhookName}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{association.DefaultName}, Verbs: []string{"get", "list", "watch"}}}}, metav1.CreateOptions{})),
		ignoreExists(rbac.RoleBindings(association.DefaultNamespace).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: webhookName}, RoleRef: ref("Role"), Subjects: subject}, metav1.CreateOptions{})),
		ignoreExists(c.CoreV1().Services(webhookNS).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: webhookName},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"}}, metav1.CreateOptions{})),
	} {
		if err != nil {
			return nil, err
		}
	}
	// The authorizer sees new bindings asynchronously: wait until the last rule is in force.
	user := "system:serviceaccount:" + webhookNS + ":" + webhookName
	if err := waitFor(ctx, nil, 10*time.Second, "the webhook's RBAC", func() error {
		r, err := c.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: webhookNS, Verb: "create", Resource: "secrets"},
		}}, metav1.CreateOptions{})
		if err == nil && !r.Status.Allowed {
			err = errors.New("not allowed yet")
		}
		return err
	}); err != nil {
		return nil, err
	}
	d.t.call("service account %s/%s: get/list/watch serviceaccounts, create events, its Secret, webhook configuration and the Pod Identity associations ConfigMap by name", webhookNS, webhookName)

	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port := splitHostPort(addr)
	metricsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, metricsPort := splitHostPort(metricsAddr)
	portN, _ := strconv.Atoi(port)
	ignore, none := admissionregistrationv1.Ignore, admissionregistrationv1.SideEffectClassNone
	path, port32 := webhook.MutatePath, int32(portN)
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: webhookConfig},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "iam-for-pods.amazonaws.com",
			// No caBundle: the webhook patches it in.
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: webhookNS, Name: webhookName, Path: &path, Port: &port32}},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			FailurePolicy: &ignore, SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": PodNamespace}},
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "eks.amazonaws.com/skip-pod-identity-webhook", Operator: metav1.LabelSelectorOpDoesNotExist}}},
		}},
	}
	if err := ignoreExists(c.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{})); err != nil {
		return nil, err
	}

	tr, err := c.CoreV1().ServiceAccounts(webhookNS).CreateToken(ctx, webhookName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(d.dir, "webhook.kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["demo"] = &clientcmdapi.Cluster{Server: d.Env.URL, CertificateAuthorityData: d.Env.CAPEM}
	cfg.AuthInfos[webhookName] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["demo"] = &clientcmdapi.Context{Cluster: "demo", AuthInfo: webhookName, Namespace: webhookNS}
	cfg.CurrentContext = "demo"
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		return nil, err
	}
	args := []string{"--kubeconfig=" + kubeconfig, "--namespace=" + webhookNS, "--service-name=" + webhookName,
		"--cert-secret=" + webhookNS + "/" + webhookSecret, "--webhook-config-name=" + webhookConfig,
		"--port=" + port, "--metrics-port=" + metricsPort,
		"--aws-default-region=" + d.AWS.Region(), "--sts-regional-endpoint",
		"--watch-pod-identity-associations=" + association.DefaultNamespace + "/" + association.DefaultName}
	d.t.call("pod-identity-webhook %s", strings.Join(redactArgs(args), " "))
	p, err := startProcess(webhookName, d.bins[webhookName], d.dir, []string{"HOME=" + d.dir}, args...)
	if err != nil {
		return nil, err
	}
	d.procs = append(d.procs, p)
	if err := waitFor(ctx, p, 20*time.Second, "the webhook's /readyz", httpOK(http.DefaultClient, "http://"+metricsAddr+"/readyz")); err != nil {
		return nil, err
	}
	sec, err := c.CoreV1().Secrets(webhookNS).Get(ctx, webhookSecret, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("the webhook's certificate Secret: %w", err)
	}
	got, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfig, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got.Webhooks[0].ClientConfig.CABundle, sec.Data[webhook.SecretKeyCABundle]) {
		return nil, errors.New("the webhook did not patch its CA into the MutatingWebhookConfiguration")
	}
	d.t.got("ready; Secret %s/%s holds its CA and serving certificate for %s.%s.svc, caBundle patched into %s (no openssl, no CSR)",
		webhookNS, webhookSecret, webhookName, webhookNS, webhookConfig)
	return p, nil
}

// createIRSAPod annotates a service account with the role, then creates a pod through the API
// server until it comes back mutated (the API server loads webhook configurations asynchronously:
// the first pods are dry runs) and reads the stored pod back.
func (d *Demo) createIRSAPod(ctx context.Context, roleARN string, p *process) (*corev1.Pod, error) {
	c := d.Env.Client
	if _, err := c.CoreV1().ServiceAccounts(PodNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Name: IRSASA, Annotations: map[string]string{oidc.AnnotationRoleARN: roleARN}}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	d.t.call("service account %s/%s annotated %s=%s", PodNamespace, IRSASA, oidc.AnnotationRoleARN, roleARN)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: irsaPod, Namespace: PodNamespace},
		Spec: corev1.PodSpec{ServiceAccountName: IRSASA, Containers: []corev1.Container{{Name: "app", Image: "public.ecr.aws/aws-cli/aws-cli:latest"}}}}
	if err := waitFor(ctx, p, 30*time.Second, "the API server to call the webhook", func() error {
		got, err := c.CoreV1().Pods(PodNamespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return err
		}
		if envOf(got.Spec.Containers[0], oidc.EnvRoleARN) == "" {
			return errors.New("dry-run pod not mutated yet")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if _, err := c.CoreV1().Pods(PodNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	stored, err := c.CoreV1().Pods(PodNamespace).Get(ctx, irsaPod, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	d.t.call("create pod %s/%s (serviceAccountName %s), then read it back", PodNamespace, irsaPod, IRSASA)
	for _, e := range stored.Spec.Containers[0].Env {
		d.t.got("env %s=%s", e.Name, e.Value)
	}
	vol, mount := tokenVolume(stored)
	if vol == nil || mount == nil {
		return nil, fmt.Errorf("the stored pod has no %s volume and mount: %+v", oidc.TokenVolumeName, stored.Spec)
	}
	sat := vol.Projected.Sources[0].ServiceAccountToken
	d.t.got("volume %s: projected serviceAccountToken audience=%s expirationSeconds=%d path=%s, mounted at %s readOnly=%v",
		vol.Name, sat.Audience, *sat.ExpirationSeconds, sat.Path, mount.MountPath, mount.ReadOnly)
	if envOf(stored.Spec.Containers[0], oidc.EnvRoleARN) != roleARN || envOf(stored.Spec.Containers[0], oidc.EnvWebIdentityTokenFile) != oidc.TokenPath {
		return nil, fmt.Errorf("the stored pod's environment is not the IRSA patch: %v", stored.Spec.Containers[0].Env)
	}
	return stored, nil
}

// podEnvironment does kubelet's part: it requests the projected token (the volume's audience and
// expiration, bound to the pod) with the TokenRequest API, writes it where the mount would put it
// (under the demo directory instead of the container's root), and returns the pod's environment
// with AWS_WEB_IDENTITY_TOKEN_FILE pointing there, plus the local STS endpoint and its CA.
func (d *Demo) podEnvironment(ctx context.Context, pod *corev1.Pod) ([]string, error) {
	vol, mount := tokenVolume(pod)
	sat := vol.Projected.Sources[0].ServiceAccountToken
	tr, err := d.Env.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, pod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{sat.Audience}, ExpirationSeconds: sat.ExpirationSeconds,
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("TokenRequest for the pod's projected token: %w", err)
	}
	mountDir := filepath.Join(d.dir, "pods", pod.Name, filepath.FromSlash(strings.TrimPrefix(mount.MountPath, "/")))
	if err := os.MkdirAll(mountDir, 0o700); err != nil {
		return nil, err
	}
	d.irsaTokenFile = filepath.Join(mountDir, sat.Path)
	if err := os.WriteFile(d.irsaTokenFile, []byte(tr.Status.Token), 0o600); err != nil {
		return nil, err
	}
	claims, err := oidc.Verify(tr.Status.Token, d.oidcJWKS, oidc.Expect{Issuer: d.Env.Issuer, Audience: sat.Audience})
	if err != nil {
		return nil, err
	}
	d.t.call("TokenRequest %s/%s audience=%s expirationSeconds=%d bound to pod %s (kubelet's request for the projected volume)",
		pod.Namespace, pod.Spec.ServiceAccountName, sat.Audience, *sat.ExpirationSeconds, pod.Name)
	d.t.got("token sub=%s pod=%s expires %s, written to <demo>/pods/%s%s/%s", claims.Subject, claims.PodName, claims.Expiry.UTC().Format(time.RFC3339), pod.Name, mount.MountPath, sat.Path)

	bundle := filepath.Join(d.dir, "aws-ca-bundle.pem")
	env := []string{"HOME=" + d.dir, "AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL_STS=" + d.AWS.STS.URL, "AWS_CA_BUNDLE=" + bundle}
	for _, e := range pod.Spec.Containers[0].Env {
		v := e.Value
		if e.Name == oidc.EnvWebIdentityTokenFile {
			v = d.irsaTokenFile
		}
		env = append(env, e.Name+"="+v)
	}
	return env, nil
}

func tokenVolume(pod *corev1.Pod) (*corev1.Volume, *corev1.VolumeMount) {
	var vol *corev1.Volume
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if v.Name == oidc.TokenVolumeName && v.Projected != nil && len(v.Projected.Sources) == 1 && v.Projected.Sources[0].ServiceAccountToken != nil {
			vol = v
		}
	}
	for i := range pod.Spec.Containers[0].VolumeMounts {
		if m := &pod.Spec.Containers[0].VolumeMounts[i]; m.Name == oidc.TokenVolumeName {
			return vol, m
		}
	}
	return vol, nil
}

func envOf(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func ignoreExists[T any](_ T, err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func ptr[T any](v T) *T { return &v }

// firstLine returns the first line of s containing substr (or s's first line).
func firstLine(s, substr string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for _, l := range lines {
		if strings.Contains(l, substr) {
			return strings.TrimSpace(l)
		}
	}
	return lines[0]
}
