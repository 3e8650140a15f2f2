package demo

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ekslink/ekslink/manifest"
	"github.com/ekslink/ekslink/registration"
	"github.com/ekslink/ekslink/statestore"
)

// InstallConnector applies the connector's manifests as rendered by the library (the StatefulSet
// is accepted but never scheduled: the demo has no nodes, it runs the containers as processes) and
// mints the connector service account's token.
func (d *Demo) InstallConnector(ctx context.Context) error {
	d.t.heading("Install the connector's objects (rendered by manifest, server-side apply)")
	objs, err := manifest.RenderConnector(manifest.ConnectorOptions{
		Region:         d.AWS.Region(),
		ActivationID:   d.registration.Activation.ID,
		ActivationCode: d.registration.Activation.Code,
		GrantedARNs:    []string{AliceARN, BobARN},
		UserExtras:     d.opts.UserExtras,
		Replicas:       1, // the demo runs one connector pod's processes, so one state Secret
	})
	if err != nil {
		return err
	}
	us, err := manifest.Unstructured(objs)
	if err != nil {
		return err
	}
	var names []string
	for _, u := range us {
		names = append(names, u.GetKind()+"/"+u.GetName())
	}
	d.t.call("apply %s", strings.Join(names, ", "))
	warnings := &warningCollector{}
	cfg := rest.CopyConfig(d.Env.Config)
	cfg.WarningHandler = warnings
	if err := manifest.Apply(ctx, cfg, us, manifest.ApplyOptions{}); err != nil {
		return fmt.Errorf("applying the connector manifests: %w", err)
	}
	for _, w := range warnings.list {
		d.t.got("API server warning: %s", w)
	}
	token, err := d.Env.TokenRequest(ctx, connectorNS, connectorName, nil, time.Hour)
	if err != nil {
		return fmt.Errorf("token for the connector service account: %w", err)
	}
	if d.tokenFile, err = d.writeFile("connector-token", []byte(token)); err != nil {
		return err
	}
	if err := d.writeKubeconfig(token); err != nil {
		return err
	}
	d.t.got("service account %s/%s token minted with TokenRequest (1h, projected-token style)", connectorNS, connectorName)

	// Least privilege, checked by the API server itself.
	sa, err := kubernetes.NewForConfig(d.Env.ConfigForToken(token))
	if err != nil {
		return err
	}
	checks := []struct {
		attr    authorizationv1.ResourceAttributes
		allowed bool
		what    string
	}{
		{authorizationv1.ResourceAttributes{Namespace: connectorNS, Verb: "get", Resource: "secrets", Name: statePrefix + "-0"}, true, "get its own state Secret"},
		{authorizationv1.ResourceAttributes{Namespace: connectorNS, Verb: "list", Resource: "secrets"}, false, "list Secrets"},
		{authorizationv1.ResourceAttributes{Namespace: "kube-system", Verb: "get", Resource: "secrets", Name: "anything"}, false, "read Secrets elsewhere"},
		{authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "users", Name: AliceARN}, true, "impersonate a granted ARN"},
		{authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "users", Name: MalloryARN}, false, "impersonate any other ARN"},
		{authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "groups", Name: "system:masters"}, false, "impersonate system:masters"},
		// The RBAC AWS documents for the EKS Connector has no userextras grant; only the opt-in
		// user extras add it.
		{authorizationv1.ResourceAttributes{Verb: "impersonate", Group: "authentication.k8s.io", Resource: "userextras", Subresource: "arn"}, d.opts.UserExtras, "set the user extra arn"},
	}
	for _, c := range checks {
		attr := c.attr
		r, err := sa.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attr}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if r.Status.Allowed != c.allowed {
			return fmt.Errorf("connector service account: %s: allowed=%v, want %v", c.what, r.Status.Allowed, c.allowed)
		}
		verdict := "no"
		if r.Status.Allowed {
			verdict = "yes"
		}
		d.t.note("can the connector %-28s %s", c.what+"?", verdict)
	}
	d.t.ok("%d objects applied; RBAC is least privilege", len(us))
	return nil
}

// warningCollector keeps the API server's warnings for the transcript instead of klog's stderr.
type warningCollector struct {
	mu   sync.Mutex
	list []string
}

func (w *warningCollector) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (d *Demo) writeKubeconfig(token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["demo"] = &clientcmdapi.Cluster{Server: d.Env.URL, CertificateAuthorityData: d.Env.CAPEM}
	cfg.AuthInfos["eks-connector"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["demo"] = &clientcmdapi.Context{Cluster: "demo", AuthInfo: "eks-connector", Namespace: connectorNS}
	cfg.CurrentContext = "demo"
	d.kubeconfig = filepath.Join(d.dir, "connector.kubeconfig")
	return clientcmd.WriteToFile(*cfg, d.kubeconfig)
}

// ConnectorInit runs `eks-connector init` as the connector's service account: it registers with SSM,
// persists the registration in the state Secret and writes the SSM agent's vault.
func (d *Demo) ConnectorInit(ctx context.Context) error {
	d.t.heading("eks-connector init: SSM registration, state Secret, SSM agent vault")
	codeFile, err := d.writeFile("activation-code", []byte(d.registration.Activation.Code))
	if err != nil {
		return err
	}
	before := d.AWS.RegisterCalls()
	args := []string{"init",
		"--kubeconfig=" + d.kubeconfig,
		"--activation-id=" + d.registration.Activation.ID,
		"--activation-code-file=" + codeFile,
		"--region=" + d.AWS.Region(),
		"--ssm-endpoint=" + d.AWS.SSM.URL,
		"--state-namespace=" + connectorNS,
		"--state-secret-prefix=" + statePrefix,
		"--vault-dir=" + d.vaultDir,
		"--pod-name=" + connectorPod,
	}
	d.t.call("eks-connector %s", strings.Join(redactArgs(args), " "))
	out, err := run(ctx, d.bins["eks-connector"], d.awsEnv, args...)
	d.init = out
	if err != nil {
		return err
	}
	if strings.Contains(out, d.registration.Activation.Code) {
		return fmt.Errorf("eks-connector init logged the activation code")
	}
	st, _, err := registration.LoadState(ctx, statestore.NewSecret(d.Env.Client, connectorNS, statePrefix+"-0", statestore.SecretOptions{}))
	if err != nil {
		return fmt.Errorf("reading the state Secret: %w", err)
	}
	if !st.Registered() {
		return fmt.Errorf("state Secret is %s, want registered", st.Status)
	}
	v, err := registration.ReadVault(d.vaultDir)
	if err != nil {
		return fmt.Errorf("reading the vault: %w", err)
	}
	if v.RegistrationKey.InstanceID != st.InstanceID || v.InstanceFingerprint.Fingerprint != st.Fingerprint {
		return fmt.Errorf("vault (%s) and state Secret (%s) disagree", v.RegistrationKey.InstanceID, st.InstanceID)
	}
	calls, instances := d.AWS.RegisterCalls()-before, len(d.AWS.Instances())
	if calls > 1 || instances != 1 {
		return fmt.Errorf("eks-connector init made %d RegisterManagedInstance calls leaving %d managed instances, want at most 1 call and exactly 1 instance", calls, instances)
	}
	d.t.got("SSM RegisterManagedInstance calls: %d; managed instances for the activation: %d", calls, instances)
	d.t.got("Secret %s/%s-0: status=%s instanceId=%s fingerprint=%s", connectorNS, statePrefix, st.Status, st.InstanceID, st.Fingerprint)
	d.t.got("vault: Manifest, Store/RegistrationKey (privateKeyType %s), Store/InstanceFingerprint (similarityThreshold %d)",
		v.RegistrationKey.PrivateKeyType, v.InstanceFingerprint.SimilarityThreshold)
	d.t.ok("registered as %s", st.InstanceID)
	return nil
}

func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if k, _, ok := strings.Cut(a, "="); ok && (k == "--kubeconfig" || strings.HasSuffix(k, "-file") || strings.HasSuffix(k, "-dir")) {
			a = k + "=…/" + filepath.Base(a[len(k)+1:])
		}
		out[i] = a
	}
	return out
}

// ConnectorProxy starts `eks-connector proxy` on a unix socket, with the rotated-key sync on the vault.
func (d *Demo) ConnectorProxy(ctx context.Context) error {
	d.t.heading("eks-connector proxy on a unix socket (impersonation, fail closed)")
	health, err := freeAddr()
	if err != nil {
		return err
	}
	metrics, err := freeAddr()
	if err != nil {
		return err
	}
	d.proxyHealth = health
	args := []string{"proxy",
		"--listen=unix://" + d.socket,
		"--api-server=" + d.Env.URL,
		"--token-file=" + d.tokenFile,
		"--ca-file=" + d.Env.CAFile,
		"--health-addr=" + health,
		"--metrics-addr=" + metrics,
		"--kubeconfig=" + d.kubeconfig,
		"--vault-dir=" + d.vaultDir,
		"--state-namespace=" + connectorNS,
		"--state-secret-prefix=" + statePrefix,
		"--pod-name=" + connectorPod,
	}
	if d.opts.UserExtras {
		args = append(args, "--user-extras")
	}
	d.t.call("eks-connector %s", strings.Join(redactArgs(args), " "))
	p, err := startProcess("connector-proxy", d.bins["eks-connector"], d.dir, d.awsEnv, args...)
	if err != nil {
		return err
	}
	d.procs = append(d.procs, p)
	d.proxy = p
	if err := waitFor(ctx, p, 20*time.Second, "the proxy's /readyz", httpOK(http.DefaultClient, "http://"+health+"/readyz")); err != nil {
		return err
	}
	fi, err := os.Stat(d.socket)
	if err != nil {
		return err
	}
	d.t.got("listening on %s (mode %v), /readyz ok", filepath.Base(d.socket), fi.Mode().Perm())
	resp, err := d.socketClient().Get("http://connector/api/v1/namespaces/" + connectorNS + "/secrets/" + statePrefix + "-0")
	body, err := checkStatus(resp, err, http.StatusUnauthorized)
	if err != nil {
		return fmt.Errorf("a request without an identity: %w", err)
	}
	d.t.call("GET /api/v1/namespaces/%s/secrets/%s-0 without x-aws-eks-identity-arn", connectorNS, statePrefix)
	d.t.got("401 %s", statusMessage(body))
	d.t.ok("a request with no identity is refused, never sent as the connector itself")
	return nil
}

// socketClient is an HTTP client that dials the proxy's unix socket, as the SSM agent does.
func (d *Demo) socketClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.socket)
		}},
	}
}

// KillConnector kills the connector's processes (a crash) and, with loseVault, deletes the vault
// directory as losing the pod's emptyDir does.
func (d *Demo) KillConnector(loseVault bool) error {
	if d.proxy != nil {
		d.proxy.kill()
		d.proxy = nil
	}
	if loseVault {
		return os.RemoveAll(d.vaultDir)
	}
	return nil
}

// Instances returns the managed instances SSM has registered.
func (d *Demo) Instances() int { return len(d.AWS.Instances()) }

// State reads the connector's state Secret.
func (d *Demo) State(ctx context.Context) (*registration.State, error) {
	st, _, err := registration.LoadState(ctx, statestore.NewSecret(d.Env.Client, connectorNS, statePrefix+"-0", statestore.SecretOptions{}))
	return st, err
}

// VaultDir is where init writes the SSM agent's vault.
func (d *Demo) VaultDir() string { return d.vaultDir }
