package demo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/manifest"
	"github.com/ekslink/ekslink/oidc"
	"github.com/ekslink/ekslink/podidentity/association"
	"github.com/ekslink/ekslink/webhook"
)

// Names of the Pod Identity anywhere step.
const (
	AnywhereSA       = "reports"
	AnywhereRoleName = "reports-writer"
	anywhereOtherSA  = "archiver"
	anywhereNoneSA   = "no-role"
	anywhereNode     = "demo-node"
	anywhereAgent    = "eks-pod-identity-agent"
	anywhereAgentNS  = "kube-system"
)

// PodIdentityAnywhere runs EKS Pod Identity with no EKS: an association kept in the cluster
// (podidentity/association, what "ekslink pod-identity association create" writes), a pod created
// with nothing else, which the webhook (--watch-pod-identity-associations) stores mutated for
// container credentials, its projected token (audience pods.eks.amazonaws.com, bound to the pod)
// requested as kubelet does, and the agent binary with the web identity backend, as manifest.RenderPodIdentityAgent
// deploys it (its rendered arguments, its ServiceAccount and RBAC). The AWS SDK's container
// credentials provider gets the role's credentials (STS AssumeRoleWithWebIdentity with the pod's
// own token, checked against the published issuer and the role's trust policy) and
// GetCallerIdentity names role and session; a pod without association gets 404 at once; with STS
// down, the cached credentials are still served. It needs the Webhook step's published issuer and
// IAM OIDC provider, and it stops the local STS: it is the last step.
func (d *Demo) PodIdentityAnywhere(ctx context.Context) error {
	d.t.heading("EKS Pod Identity without EKS: an association in the cluster, the agent's web identity backend, STS")
	providerARN, err := oidc.ProviderARN("aws", d.AWS.AccountID(), d.Env.Issuer)
	if err != nil {
		return err
	}
	if err := d.AWS.AddClientID(providerARN, awsfake.PodIdentityAudience); err != nil {
		return fmt.Errorf("the IAM OIDC provider of the Webhook step: %w", err)
	}
	roles := map[string]string{}
	for sa, name := range map[string]string{AnywhereSA: AnywhereRoleName, anywhereOtherSA: "archiver"} {
		policy, err := oidc.TrustPolicy(oidc.TrustPolicyOptions{ProviderARN: providerARN, Issuer: d.Env.Issuer,
			Namespace: PodNamespace, ServiceAccount: sa, Audience: awsfake.PodIdentityAudience})
		if err != nil {
			return err
		}
		if roles[sa], err = d.AWS.CreateRole(name, policy); err != nil {
			return err
		}
	}
	d.t.call("iam: client id %s added to %s; role %s trusting %s/%s with aud %s (oidc.TrustPolicy)",
		awsfake.PodIdentityAudience, providerARN, roles[AnywhereSA], PodNamespace, AnywhereSA, awsfake.PodIdentityAudience)

	store := association.NewStore(d.Env.Client, association.Options{})
	for _, sa := range []string{AnywhereSA, anywhereOtherSA} {
		if _, err := store.Create(ctx, association.Association{Namespace: PodNamespace, ServiceAccount: sa, RoleARN: roles[sa]}); err != nil {
			return err
		}
	}
	d.t.call("ekslink pod-identity association create --namespace %s --service-account %s --role-arn %s (and %s)", PodNamespace, AnywhereSA, roles[AnywhereSA], anywhereOtherSA)
	d.t.got("ConfigMap %s/%s: 2 associations", association.DefaultNamespace, association.DefaultName)

	callsBefore := d.AWS.WebIdentityCalls()
	agentAddr, err := d.startWebIdentityAgent(ctx)
	if err != nil {
		return err
	}
	uri := "http://" + agentAddr + "/v1/credentials"
	pod, err := d.createAssociatedPod(ctx)
	if err != nil {
		return err
	}
	vol := containerCredentialsVolume(pod)
	appToken, err := d.podToken(ctx, pod, vol.Audience, *vol.ExpirationSeconds)
	if err != nil {
		return err
	}
	tokenFile, err := d.writeFile("anywhere-pod-identity-token", []byte(appToken))
	if err != nil {
		return err
	}
	d.t.call("kubelet's TokenRequest for the projected volume: audience %s, expirationSeconds %d, bound to pod %s", vol.Audience, *vol.ExpirationSeconds, pod.Name)
	provider := endpointcreds.New(uri, func(o *endpointcreds.Options) {
		o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
			b, err := os.ReadFile(tokenFile)
			return string(b), err
		})
	})
	var creds aws.Credentials
	for range 3 {
		if creds, err = provider.Retrieve(ctx); err != nil {
			return fmt.Errorf("the SDK could not obtain credentials from the web identity agent: %w\n%s", err, d.agentLogs())
		}
	}
	if calls := d.AWS.WebIdentityCalls() - callsBefore; calls != 1 {
		return fmt.Errorf("three credential requests made %d AssumeRoleWithWebIdentity calls, want 1 (cache)", calls)
	}
	reqs := d.AWS.STS.Requests()
	if last := reqs[len(reqs)-1]; !strings.Contains(string(last.Body), "Action=AssumeRoleWithWebIdentity") || last.AccessKeyID != "" || last.Header.Get("Authorization") != "" {
		return fmt.Errorf("the agent's last STS request is not an unsigned AssumeRoleWithWebIdentity: %s (access key %q)", last.Body, last.AccessKeyID)
	}
	d.t.call("AWS SDK endpointcreds provider: AWS_CONTAINER_CREDENTIALS_FULL_URI=%s (the pod's %s, on the agent's loopback address here), AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=…/%s",
		uri, envOf(pod.Spec.Containers[0], webhook.EnvContainerCredentialsURI), filepath.Base(tokenFile))
	d.t.got("credentials %s… expiring %s; 3 SDK requests, 1 unsigned AssumeRoleWithWebIdentity with the pod's token", creds.AccessKeyID[:8], creds.Expires.UTC().Format(time.RFC3339))

	cfg := d.AWS.Config()
	cfg.Credentials = aws.NewCredentialsCache(provider)
	id, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(d.AWS.STS.URL) }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("STS GetCallerIdentity with the pod's credentials: %w", err)
	}
	d.t.call("sts:GetCallerIdentity signed with those credentials")
	d.t.got("%s", aws.ToString(id.Arn))
	want := "arn:aws:sts::" + d.AWS.AccountID() + ":assumed-role/" + AnywhereRoleName + "/eks-" + ClusterName + "-" + PodNamespace + "-" + AnywhereSA
	if aws.ToString(id.Arn) != want {
		return fmt.Errorf("caller identity %s, want %s (role and the service account's session)", aws.ToString(id.Arn), want)
	}

	noneToken, err := d.boundPodToken(ctx, "no-role-1", anywhereNoneSA)
	if err != nil {
		return err
	}
	body, err := agentGet(ctx, uri, noneToken, http.StatusNotFound)
	if err != nil {
		return fmt.Errorf("a pod without association: %w", err)
	}
	if !strings.Contains(body, "NoAssociation") {
		return fmt.Errorf("a pod without association: %s, want a NoAssociation error", body)
	}
	d.t.call("GET /v1/credentials with the token of pod %s/no-role-1 (service account %s, no association)", PodNamespace, anywhereNoneSA)
	if calls := d.AWS.WebIdentityCalls() - callsBefore; calls != 1 {
		return fmt.Errorf("a pod without association reached STS (%d calls, want still 1)", calls)
	}
	d.t.got("404 %s (no STS call)", strings.TrimSpace(body))

	// STS down: the cached credentials are still served, to the pod and to a new pod of the same
	// service account (its token validated locally); a service account with nothing cached gets a
	// retryable 503, not a 404.
	d.AWS.STS.Close()
	d.t.call("stop the local STS")
	again, err := provider.Retrieve(ctx)
	if err != nil || again.AccessKeyID != creds.AccessKeyID {
		return fmt.Errorf("STS down: the pod's cached credentials were not served (%v)\n%s", err, d.agentLogs())
	}
	secondToken, err := d.boundPodToken(ctx, "reports-2", AnywhereSA)
	if err != nil {
		return err
	}
	body, err = agentGet(ctx, uri, secondToken, http.StatusOK)
	if err != nil || !strings.Contains(body, creds.AccessKeyID) {
		return fmt.Errorf("STS down: a new pod of %s/%s did not get the cached credentials: %v %s", PodNamespace, AnywhereSA, err, body)
	}
	d.t.got("reports-1 and a new pod reports-2 (its token checked locally): the cached credentials %s…", creds.AccessKeyID[:8])
	otherToken, err := d.boundPodToken(ctx, "archiver-1", anywhereOtherSA)
	if err != nil {
		return err
	}
	if body, err = agentGet(ctx, uri, otherToken, http.StatusServiceUnavailable); err != nil || !strings.Contains(body, "UpstreamUnavailable") {
		return fmt.Errorf("STS down, nothing cached for %s: %v %s, want a retryable 503 UpstreamUnavailable", anywhereOtherSA, err, body)
	}
	d.t.got("archiver-1 (associated, nothing cached): 503 %s", strings.TrimSpace(body))
	d.t.ok("a pod on a cluster without EKS got its role's credentials through the agent, as on EKS")
	return nil
}

// startWebIdentityAgent renders the agent with the web identity backend (loopback addresses),
// applies its ServiceAccount and RBAC (not the DaemonSet: no kubelet here), and runs the binary with
// the rendered server arguments and environment (NODE_NAME as the downward API would set it) as
// that ServiceAccount. It returns the credentials address.
func (d *Demo) startWebIdentityAgent(ctx context.Context) (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	host, port := splitHostPort(addr)
	probe, err := freeAddr()
	if err != nil {
		return "", err
	}
	metrics, err := freeAddr()
	if err != nil {
		return "", err
	}
	var portN int32
	if _, err := fmt.Sscan(port, &portN); err != nil {
		return "", err
	}
	objs, err := manifest.RenderPodIdentityAgent(manifest.PodIdentityAgentOptions{Namespace: anywhereAgentNS, Name: anywhereAgent,
		ClusterName: ClusterName, Region: d.AWS.Region(), BindHosts: []string{host}, Port: portN, ProbeAddr: probe, MetricsAddr: metrics,
		WebIdentity: &manifest.PodIdentityWebIdentity{}})
	if err != nil {
		return "", err
	}
	var server corev1.Container
	var rbac []runtime.Object
	for _, o := range objs {
		if ds, ok := o.(*appsv1.DaemonSet); ok {
			server = ds.Spec.Template.Spec.Containers[0]
		} else {
			rbac = append(rbac, o)
		}
	}
	us, err := manifest.Unstructured(rbac)
	if err != nil {
		return "", err
	}
	if err := manifest.Apply(ctx, d.Env.Config, us, manifest.ApplyOptions{}); err != nil {
		return "", err
	}
	user := "system:serviceaccount:" + anywhereAgentNS + ":" + anywhereAgent
	if err := waitFor(ctx, nil, 10*time.Second, "the agent's RBAC", func() error {
		r, err := d.Env.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: association.DefaultNamespace, Verb: "watch", Resource: "configmaps", Name: association.DefaultName},
		}}, metav1.CreateOptions{})
		if err == nil && !r.Status.Allowed {
			err = errors.New("not allowed yet")
		}
		return err
	}); err != nil {
		return "", err
	}
	d.t.call("manifest.RenderPodIdentityAgent(WebIdentity): service account %s/%s, get/list/watch pods and ConfigMap %s/%s by name, nothing else",
		anywhereAgentNS, anywhereAgent, association.DefaultNamespace, association.DefaultName)

	tr, err := d.Env.Client.CoreV1().ServiceAccounts(anywhereAgentNS).CreateToken(ctx, anywhereAgent, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	kubeconfig := filepath.Join(d.dir, "agent.kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["demo"] = &clientcmdapi.Cluster{Server: d.Env.URL, CertificateAuthorityData: d.Env.CAPEM}
	cfg.AuthInfos[anywhereAgent] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["demo"] = &clientcmdapi.Context{Cluster: "demo", AuthInfo: anywhereAgent}
	cfg.CurrentContext = "demo"
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		return "", err
	}
	// The node has no AWS credentials: the backend's only AWS call is the unsigned
	// AssumeRoleWithWebIdentity.
	var env []string
	for _, kv := range d.awsEnv {
		if k, _, _ := strings.Cut(kv, "="); k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY" && k != "AWS_SESSION_TOKEN" {
			env = append(env, kv)
		}
	}
	for _, e := range server.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
			env = append(env, e.Name+"="+anywhereNode)
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		}
	}
	args := append(server.Args, "--kubeconfig="+kubeconfig)
	d.t.call("pod-identity-agent %s (NODE_NAME=%s; no AWS credentials in its environment)", strings.Join(redactArgs(args), " "), anywhereNode)
	p, err := startProcess("pod-identity-agent-web-identity", d.bins["pod-identity-agent"], d.dir, env, args...)
	if err != nil {
		return "", err
	}
	d.procs = append(d.procs, p)
	d.webIdentityAgent = p
	if err := waitFor(ctx, p, 20*time.Second, "the agent's /readyz (keys, pods and associations synced)", httpOK(http.DefaultClient, "http://"+probe+"/readyz")); err != nil {
		return "", err
	}
	d.t.got("ready: the API server's JWKS, the node's pods and the associations synced")
	return addr, nil
}

// createAssociatedPod creates the service account and a pod of it on the demo node, nothing else:
// the webhook (started with --watch-pod-identity-associations in the Webhook step) picks the
// association up and stores the pod mutated for container credentials. The first pods are dry
// runs, until the webhook's informer has seen the association.
func (d *Demo) createAssociatedPod(ctx context.Context) (*corev1.Pod, error) {
	c := d.Env.Client
	if _, err := c.CoreV1().ServiceAccounts(PodNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: AnywhereSA}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	pod := anywherePod("reports-1", AnywhereSA)
	if err := waitFor(ctx, nil, 20*time.Second, "the webhook to see the association", func() error {
		got, err := c.CoreV1().Pods(PodNamespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return err
		}
		if got.Labels[webhook.PodIdentityLabel] != "enabled" {
			return errors.New("dry-run pod not mutated yet")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if _, err := c.CoreV1().Pods(PodNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	stored, err := c.CoreV1().Pods(PodNamespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	d.t.call("create pod %s/%s (serviceAccountName %s, node %s), nothing else, then read it back", PodNamespace, pod.Name, AnywhereSA, anywhereNode)
	d.t.got("label %s=%s", webhook.PodIdentityLabel, stored.Labels[webhook.PodIdentityLabel])
	for _, e := range stored.Spec.Containers[0].Env {
		d.t.got("env %s=%s", e.Name, e.Value)
	}
	vol := containerCredentialsVolume(stored)
	if vol == nil || vol.Audience != awsfake.PodIdentityAudience || envOf(stored.Spec.Containers[0], webhook.EnvContainerCredentialsURI) == "" ||
		envOf(stored.Spec.Containers[0], webhook.EnvContainerAuthTokenFile) == "" {
		return nil, fmt.Errorf("the stored pod is not mutated for container credentials: labels %v, env %v, volumes %+v", stored.Labels, stored.Spec.Containers[0].Env, stored.Spec.Volumes)
	}
	d.t.got("volume %s: projected serviceAccountToken audience=%s expirationSeconds=%d", webhook.DefaultContainerCredentialsVolumeName, vol.Audience, *vol.ExpirationSeconds)
	return stored, nil
}

func anywherePod(name, sa string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: PodNamespace},
		Spec: corev1.PodSpec{ServiceAccountName: sa, NodeName: anywhereNode, Containers: []corev1.Container{{Name: "app", Image: "public.ecr.aws/aws-cli/aws-cli:latest"}}}}
}

// containerCredentialsVolume is the projected token the webhook added for container credentials.
func containerCredentialsVolume(pod *corev1.Pod) *corev1.ServiceAccountTokenProjection {
	for _, v := range pod.Spec.Volumes {
		if v.Name == webhook.DefaultContainerCredentialsVolumeName && v.Projected != nil && len(v.Projected.Sources) == 1 {
			return v.Projected.Sources[0].ServiceAccountToken
		}
	}
	return nil
}

// podToken requests a pod's projected token as kubelet does: the volume's audience and
// expiration, bound to the pod.
func (d *Demo) podToken(ctx context.Context, pod *corev1.Pod, audience string, expirationSeconds int64) (string, error) {
	tr, err := d.Env.Client.CoreV1().ServiceAccounts(PodNamespace).CreateToken(ctx, pod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         []string{audience},
		ExpirationSeconds: ptr(expirationSeconds),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

// boundPodToken creates a pod of service account sa on the demo node (and the service account),
// and requests its projected token as kubelet does: audience pods.eks.amazonaws.com, bound to the
// pod.
func (d *Demo) boundPodToken(ctx context.Context, name, sa string) (string, error) {
	c := d.Env.Client
	if _, err := c.CoreV1().ServiceAccounts(PodNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	p, err := c.CoreV1().Pods(PodNamespace).Create(ctx, anywherePod(name, sa), metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return d.podToken(ctx, p, awsfake.PodIdentityAudience, 3600)
}

// agentGet asks the agent for credentials with a token and checks the status.
func agentGet(ctx context.Context, uri, token string, want int) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", token)
	resp, err := http.DefaultClient.Do(req)
	return checkStatus(resp, err, want)
}

func (d *Demo) agentLogs() string {
	if d.webIdentityAgent == nil {
		return ""
	}
	return d.webIdentityAgent.logs()
}
