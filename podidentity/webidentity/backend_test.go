package webidentity_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/prometheus/client_golang/prometheus"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/oidc"
	"github.com/ekslink/ekslink/podidentity"
	"github.com/ekslink/ekslink/podidentity/association"
	"github.com/ekslink/ekslink/podidentity/webidentity"
)

const (
	cluster = "onprem"
	node    = "node-1"
)

// world is one cluster (the real API server), its issuer as STS sees it (the API server's own
// discovery document and JWKS, served under the issuer's name), IAM and STS (awsfake: STS checks
// each token against that JWKS, the provider's client ids and the role's trust policy), the
// associations, and an agent (podidentity.Server) with the web identity backend.
type world struct {
	env   *envtest.Environment
	aws   *awsfake.Set
	ns    string
	store *association.Store
	agent string // http://127.0.0.1:port/v1/credentials
	reg   *prometheus.Registry
}

// metric is the value of a counter of the backend with one label.
func (w *world) metric(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func newWorld(t *testing.T, optFns ...func(*webidentity.Options)) *world {
	t.Helper()
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	w := &world{env: env, ns: env.Namespace(t), reg: prometheus.NewRegistry()}

	// The issuer, as published: exactly the API server's documents.
	rc := env.Client.Discovery().RESTClient()
	disc, err := rc.Get().AbsPath(oidc.DiscoveryPath).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := rc.Get().AbsPath(oidc.KubeJWKSPath).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	issuerSrv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		if r.URL.Path == oidc.DiscoveryPath {
			_, _ = rw.Write(disc)
			return
		}
		_, _ = rw.Write(jwks)
	}))
	t.Cleanup(issuerSrv.Close)

	fake, err := awsfake.Start(awsfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	fake.SetIssuerClient(awsfake.IssuerClient(issuerSrv))
	w.aws = fake
	providerARN, err := fake.CreateOIDCProvider(awsfake.OIDCProvider{URL: env.Issuer, ClientIDs: []string{webidentity.PodAudience}})
	if err != nil {
		t.Fatal(err)
	}
	for _, sa := range []string{"app", "other"} {
		policy, err := oidc.TrustPolicy(oidc.TrustPolicyOptions{ProviderARN: providerARN, Issuer: env.Issuer, Namespace: w.ns, ServiceAccount: sa, Audience: webidentity.PodAudience})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fake.CreateRole(w.ns[len(w.ns)-20:]+"-"+sa, policy); err != nil {
			t.Fatal(err)
		}
		env.CreateServiceAccount(t, w.ns, sa)
	}
	env.CreateServiceAccount(t, w.ns, "none")

	opts := association.Options{Namespace: w.ns}
	w.store = association.NewStore(env.Client, opts)
	ix := association.NewIndex(env.Client, association.IndexOptions{Options: opts})
	bctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go ix.Run(bctx)

	fns := append([]func(*webidentity.Options){func(o *webidentity.Options) {
		o.NodeName = node
		o.Registerer = w.reg
		o.STSOptions = append(o.STSOptions, func(so *sts.Options) { so.BaseEndpoint = aws.String(fake.STS.URL) })
	}}, optFns...)
	backend, err := webidentity.NewFromConfig(fake.Config(), env.Client, ix, fns...)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(bctx, 20*time.Second)
	defer scancel()
	if err := backend.Start(sctx); err != nil {
		t.Fatal(err)
	}
	srv, err := podidentity.NewServer(backend, podidentity.ServerOptions{ClusterName: cluster, SourceBurst: 64}) // all test pods share 127.0.0.1
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(bctx, ln) }()
	w.agent = "http://" + ln.Addr().String() + podidentity.CredentialsPath
	return w
}

func (w *world) roleARN(sa string) string {
	return "arn:aws:iam::" + w.aws.AccountID() + ":role/" + w.ns[len(w.ns)-20:] + "-" + sa
}

func (w *world) associate(t *testing.T, sa string) {
	t.Helper()
	if _, err := w.store.Create(envtest.Context(t), association.Association{Namespace: w.ns, ServiceAccount: sa, RoleARN: w.roleARN(sa)}); err != nil {
		t.Fatal(err)
	}
}

// pod creates a pod of the service account on the agent's node and returns its projected token
// (audience pods.eks.amazonaws.com, bound to the pod), as the kubelet would mint it.
func (w *world) pod(t *testing.T, name, sa string) (*corev1.Pod, string) {
	t.Helper()
	ctx := envtest.Context(t)
	pod, err := w.env.Client.CoreV1().Pods(w.ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{ServiceAccountName: sa, NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "app"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secs := int64(86400)
	tr, err := w.env.Client.CoreV1().ServiceAccounts(w.ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{webidentity.PodAudience}, ExpirationSeconds: &secs,
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod, tr.Status.Token
}

// sdkCredentials asks the agent with the AWS SDK's container credentials provider.
func (w *world) sdkCredentials(t *testing.T, token string) (aws.Credentials, error) {
	t.Helper()
	p := endpointcreds.New(w.agent, func(o *endpointcreds.Options) { o.AuthorizationToken = token })
	return p.Retrieve(envtest.Context(t))
}

func (w *world) callerIdentity(t *testing.T, creds aws.Credentials) *sts.GetCallerIdentityOutput {
	t.Helper()
	cfg := w.aws.Config()
	cfg.Credentials = aws.NewCredentialsCache(staticProvider{creds})
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(w.aws.STS.URL) }).GetCallerIdentity(envtest.Context(t), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type staticProvider struct{ c aws.Credentials }

func (s staticProvider) Retrieve(context.Context) (aws.Credentials, error) { return s.c, nil }

// A pod of an associated service account gets the role's credentials through the SDK's default
// chain (container credentials environment, as the webhook sets it); GetCallerIdentity names the
// role and a session naming cluster, namespace and service account.
func TestPodGetsRoleCredentialsThroughTheSDK(t *testing.T) {
	w := newWorld(t)
	w.associate(t, "app")
	_, token := w.pod(t, "web-1", "app")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "eks-pod-identity-token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     w.agent,
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile,
		"AWS_ACCESS_KEY_ID":                      "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": w.aws.Region(),
	} {
		t.Setenv(k, v)
	}
	cfg, err := config.LoadDefaultConfig(envtest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(envtest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || !creds.CanExpire || creds.AccountID != w.aws.AccountID() {
		t.Fatalf("credentials %+v", creds)
	}
	id := w.callerIdentity(t, creds)
	wantSession := "eks-" + cluster + "-" + w.ns + "-app"
	if len(wantSession) > 64 {
		t.Fatalf("test namespace too long for the session name check: %s", wantSession)
	}
	want := "arn:aws:sts::" + w.aws.AccountID() + ":assumed-role/" + w.ns[len(w.ns)-20:] + "-app/" + wantSession
	if aws.ToString(id.Arn) != want {
		t.Fatalf("GetCallerIdentity ARN = %s, want %s", aws.ToString(id.Arn), want)
	}
	if w.aws.WebIdentityCalls() != 1 {
		t.Fatalf("STS calls = %d, want 1", w.aws.WebIdentityCalls())
	}
}

// Refusals reach the SDK as the agent's JSON errors: no association is a 404 at once (no STS
// call); a token of another service account does not get this one's role; a deleted pod's token
// and a token without the pod audience are refused before STS.
func TestRefusals(t *testing.T) {
	w := newWorld(t)
	w.associate(t, "app")
	w.associate(t, "other")

	_, noneToken := w.pod(t, "none-1", "none")
	_, err := w.sdkCredentials(t, noneToken)
	assertAgentError(t, err, "NoAssociation: no association for service account "+w.ns+"/none")

	// The other service account's token gets the other role, never app's.
	_, otherToken := w.pod(t, "other-1", "other")
	creds, err := w.sdkCredentials(t, otherToken)
	if err != nil {
		t.Fatal(err)
	}
	if arn := aws.ToString(w.callerIdentity(t, creds).Arn); !strings.Contains(arn, w.ns[len(w.ns)-20:]+"-other/") {
		t.Fatalf("other's token got %s", arn)
	}
	// An association of another service account with app's role: STS refuses it (the role's
	// trust policy names app's subject only), and the SDK gets a 403.
	w.env.CreateServiceAccount(t, w.ns, "intruder")
	if _, err := w.store.Create(envtest.Context(t), association.Association{Namespace: w.ns, ServiceAccount: "intruder", RoleARN: w.roleARN("app")}); err != nil {
		t.Fatal(err)
	}
	_, intruderToken := w.pod(t, "intruder-1", "intruder")
	waitFor(t, func() bool {
		_, err := w.sdkCredentials(t, intruderToken)
		return err == nil || !strings.Contains(err.Error(), "NoAssociation")
	})
	_, err = w.sdkCredentials(t, intruderToken)
	assertAgentError(t, err, "AccessDenied: STS AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity")

	// Its association deleted, the other service account gets nothing, whatever role exists.
	if _, err := w.store.Delete(envtest.Context(t), w.ns, "other"); err != nil {
		t.Fatal(err)
	}
	_, other2 := w.pod(t, "other-2", "other")
	waitFor(t, func() bool {
		_, err := w.sdkCredentials(t, other2)
		return err != nil && strings.Contains(err.Error(), "NoAssociation")
	})

	pod, token := w.pod(t, "gone-1", "app")
	zero := int64(0)
	if err := w.env.Client.CoreV1().Pods(w.ns).Delete(envtest.Context(t), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	calls := w.aws.WebIdentityCalls()
	_, err = w.sdkCredentials(t, token)
	assertAgentError(t, err, "InvalidToken: pod "+w.ns+"/gone-1 the token is bound to no longer exists")
	if w.aws.WebIdentityCalls() != calls {
		t.Fatal("a deleted pod's token reached STS")
	}

	// A token for the service account but with STS's audience (not a pod token) is refused.
	_, err = w.sdkCredentials(t, w.env.Token(t, w.ns, "app", []string{"sts.amazonaws.com"}, time.Hour))
	assertAgentError(t, err, "InvalidToken: oidc: token rejected: audience mismatch")
	if w.aws.WebIdentityCalls() != calls {
		t.Fatal("a token with another audience reached STS")
	}
	const refusals = "ekslink_pod_identity_webidentity_refusals_total"
	if w.metric(t, refusals, "reason", "pod_gone") != 1 || w.metric(t, refusals, "reason", "invalid_token") != 1 || w.metric(t, refusals, "reason", "no_association") < 2 {
		t.Fatalf("refusal metrics: pod_gone %v, invalid_token %v, no_association %v", w.metric(t, refusals, "reason", "pod_gone"), w.metric(t, refusals, "reason", "invalid_token"), w.metric(t, refusals, "reason", "no_association"))
	}
}

// Many pods of one service account: one STS call for all of them, and the SDKs all get the same
// session's credentials.
func TestOneSTSCallPerServiceAccountAndRole(t *testing.T) {
	w := newWorld(t)
	w.associate(t, "app")
	const pods = 12
	tokens := make([]string, pods)
	for i := range tokens {
		_, tokens[i] = w.pod(t, "web-"+string(rune('a'+i)), "app")
	}
	var wg sync.WaitGroup
	keys := make([]string, pods)
	errs := make([]error, pods)
	// Half of the pods ask together (they join one call in flight), the others one after the
	// other later (they get the shared credentials).
	for i := range tokens[:pods/2] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := w.sdkCredentials(t, tokens[i])
			keys[i], errs[i] = c.AccessKeyID, err
		}()
	}
	wg.Wait()
	for i := pods / 2; i < pods; i++ {
		c, err := w.sdkCredentials(t, tokens[i])
		keys[i], errs[i] = c.AccessKeyID, err
	}
	for i := range keys {
		if errs[i] != nil || keys[i] != keys[0] {
			t.Fatalf("pod %d: %q %v (pod 0: %q)", i, keys[i], errs[i], keys[0])
		}
	}
	if n := w.aws.WebIdentityCalls(); n != 1 {
		t.Fatalf("STS calls for %d pods of one service account = %d, want 1", pods, n)
	}
	const calls, answers = "ekslink_pod_identity_webidentity_sts_calls_total", "ekslink_pod_identity_webidentity_answers_total"
	if w.metric(t, calls, "outcome", "success") != 1 || w.metric(t, answers, "source", "sts") != 1 ||
		w.metric(t, answers, "source", "in_flight")+w.metric(t, answers, "source", "shared") != pods-1 ||
		w.metric(t, answers, "source", "shared") < pods/2 {
		t.Fatalf("metrics: sts %v, in_flight %v, shared %v", w.metric(t, answers, "source", "sts"), w.metric(t, answers, "source", "in_flight"), w.metric(t, answers, "source", "shared"))
	}
}

// With PerPodSessions every pod has its own session, named after the pod as EKS names it.
func TestPerPodSessions(t *testing.T) {
	w := newWorld(t, func(o *webidentity.Options) { o.PerPodSessions = true })
	w.associate(t, "app")
	_, t1 := w.pod(t, "web-1", "app")
	_, t2 := w.pod(t, "web-2", "app")
	c1, err := w.sdkCredentials(t, t1)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := w.sdkCredentials(t, t2)
	if err != nil {
		t.Fatal(err)
	}
	a1, a2 := aws.ToString(w.callerIdentity(t, c1).Arn), aws.ToString(w.callerIdentity(t, c2).Arn)
	if !strings.Contains(a1, "/eks-"+cluster+"-web-1-") || !strings.Contains(a2, "/eks-"+cluster+"-web-2-") || w.aws.WebIdentityCalls() != 2 {
		t.Fatalf("sessions %s, %s; STS calls %d", a1, a2, w.aws.WebIdentityCalls())
	}
}

func assertAgentError(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got credentials, want the agent's %s error", code)
	}
	if !strings.Contains(err.Error(), code) {
		t.Fatalf("error %v, want the agent's %s", err, code)
	}
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() < 400 || re.HTTPStatusCode() >= 500 {
		t.Fatalf("error %v: want a 4xx answer the SDK reports with its status", err)
	}
	t.Logf("the SDK reports: %v", err)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Credentials of a service account are shared while young (ShareFraction of their lifetime);
// after that the next new token causes one new STS call, whose credentials are shared in turn.
func TestSharingEndsBeforeTheServerRefreshes(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	w := newWorld(t, func(o *webidentity.Options) { o.Now = clock })
	w.associate(t, "app")
	ask := func(name string) string {
		_, tok := w.pod(t, name, "app")
		c, err := w.sdkCredentials(t, tok)
		if err != nil {
			t.Fatal(err)
		}
		return c.AccessKeyID
	}
	first := ask("p1")
	advance(20 * time.Minute) // a third of the hour: still shared
	if ask("p2") != first || w.aws.WebIdentityCalls() != 1 {
		t.Fatalf("at 20 min: STS calls %d, want the shared credentials", w.aws.WebIdentityCalls())
	}
	advance(5 * time.Minute) // 25 min: the server refreshes from 25 min on (half life minus jitter)
	second := ask("p3")
	if second == first || w.aws.WebIdentityCalls() != 2 {
		t.Fatalf("at 25 min: STS calls %d, want one new call", w.aws.WebIdentityCalls())
	}
	if ask("p4") != second || w.aws.WebIdentityCalls() != 2 {
		t.Fatalf("the new credentials are not shared: STS calls %d", w.aws.WebIdentityCalls())
	}
}

// STS down: a new token of a service account whose credentials are cached still gets them (its
// token validated locally); a service account with nothing cached gets a retryable 503, not a
// refusal; no association stays a 404.
func TestSTSOutage(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	w := newWorld(t, func(o *webidentity.Options) { o.Now = clock })
	w.associate(t, "app")
	w.associate(t, "other")
	_, t1 := w.pod(t, "app-1", "app")
	c1, err := w.sdkCredentials(t, t1)
	if err != nil {
		t.Fatal(err)
	}
	_, t2 := w.pod(t, "app-2", "app")
	_, tOther := w.pod(t, "other-1", "other")
	_, tNone := w.pod(t, "none-1", "none")
	w.aws.STS.Close()
	mu.Lock()
	now = now.Add(30 * time.Minute) // past sharing: the backend asks STS, which is down
	mu.Unlock()

	c2, err := w.sdkCredentials(t, t2)
	if err != nil || c2.AccessKeyID != c1.AccessKeyID {
		t.Fatalf("rotated/new token of a cached service account during the outage: %v", err)
	}
	_, err = w.sdkCredentials(t, tOther)
	var re interface{ HTTPStatusCode() int }
	if err == nil || !strings.Contains(err.Error(), "UpstreamUnavailable") || !strings.Contains(err.Error(), "STS could not be reached") || !errors.As(err, &re) || re.HTTPStatusCode() != 503 {
		t.Fatalf("nothing cached, STS down: %v, want 503 UpstreamUnavailable naming STS", err)
	}
	_, err = w.sdkCredentials(t, tNone)
	assertAgentError(t, err, "NoAssociation")
	if w.metric(t, "ekslink_pod_identity_webidentity_answers_total", "source", "outage") != 1 || w.metric(t, "ekslink_pod_identity_webidentity_sts_calls_total", "outcome", "unavailable") < 2 {
		t.Fatalf("the outage is not in the metrics: outage answers %v, unavailable calls %v", w.metric(t, "ekslink_pod_identity_webidentity_answers_total", "source", "outage"), w.metric(t, "ekslink_pod_identity_webidentity_sts_calls_total", "outcome", "unavailable"))
	}
}
