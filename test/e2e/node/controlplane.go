package node

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
)

// startControlPlane starts etcd and kube-apiserver (envtest) set up for a node, and
// returns the bearer tokens of the kubelet ("kubelet"), the controller manager ("kcm") and the
// scheduler ("scheduler").
func (n *Node) startControlPlane(ctx context.Context, t testing.TB) (map[string]string, error) {
	// Credentials: static tokens give each component its real identity (the kubelet is
	// system:node:<name> in system:nodes, held to its own node by NodeRestriction);
	// one CA signs the kubelet's serving certificate and the API server's client certificate
	// for the kubelet, so logs, exec and attach go over verified, authenticated TLS.
	pki := filepath.Join(n.Dir, "pki")
	ca, err := envtest.NewCA("ekslink-e2e-node-ca")
	if err != nil {
		return nil, err
	}
	kubeletCert, kubeletKey, err := ca.Issue(Name, nil, []string{Name}, []net.IP{n.IP}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	apiCert, apiKey, err := ca.Issue(kubeletClientUser, nil, nil, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	// The API server's certificate for in-cluster clients: they dial the kubernetes Service
	// address, which the node's service proxy passes to the API server on the node IP; the API
	// server picks this certificate for connections to the node IP (--tls-sni-cert-key with the
	// node IP as explicit name: without a server name in the client hello, which clients never
	// send for an IP, the API server looks the local address up among the names; names taken from
	// a certificate leave IPs out, so the IP must be given).
	serviceCert, serviceKey, err := ca.Issue("kube-apiserver",
		nil, []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.ParseIP(KubernetesServiceIP), n.IP}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	n.ca = ca
	tokens := map[string]string{}
	for _, who := range []string{"kubelet", "kcm", "scheduler"} {
		tokens[who] = randomToken()
	}
	tokenFile := fmt.Sprintf("%s,system:node:%s,uid-node,\"system:nodes\"\n%s,system:kube-controller-manager,uid-kcm\n%s,system:kube-scheduler,uid-scheduler\n",
		tokens["kubelet"], Name, tokens["kcm"], tokens["scheduler"])
	// The API server's files live apart from the node's directory: Stop removes the node and
	// kills whatever names its directory, while the control plane outlives it (its own cleanup).
	apiDir, err := os.MkdirTemp("", "ekslink-node-apiserver-")
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = os.RemoveAll(apiDir) })
	files := map[string]map[string][]byte{
		pki: {"ca.crt": ca.PEM, "kubelet.crt": kubeletCert, "kubelet.key": kubeletKey},
		apiDir: {"ca.crt": ca.PEM, "kubelet-client.crt": apiCert, "kubelet-client.key": apiKey, "tokens.csv": []byte(tokenFile),
			"service.crt": serviceCert, "service.key": serviceKey},
	}
	for dir, byName := range files {
		for name, data := range byName {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				return nil, err
			}
		}
	}
	n.Env = envtest.Start(t, &envtest.Environment{ExtraArgs: []string{
		"--enable-admission-plugins=NodeRestriction",
		"--token-auth-file=" + filepath.Join(apiDir, "tokens.csv"),
		"--kubelet-client-certificate=" + filepath.Join(apiDir, "kubelet-client.crt"),
		"--kubelet-client-key=" + filepath.Join(apiDir, "kubelet-client.key"),
		"--kubelet-certificate-authority=" + filepath.Join(apiDir, "ca.crt"),
		"--kubelet-preferred-address-types=InternalIP",
		// Every address, so that the service proxy reaches it on the node IP (envtest binds
		// loopback; the later flag wins). Only this machine routes to the node IP.
		"--bind-address=0.0.0.0",
		"--tls-sni-cert-key=" + filepath.Join(apiDir, "service.crt") + "," + filepath.Join(apiDir, "service.key") + ":" + n.IP.String(),
		// Webhooks and aggregated APIs behind a Service are called at a ready endpoint's pod
		// address (on the bridge, which this machine routes to) instead of the ClusterIP, which
		// only kube-proxy would serve: the API server resolves the Service's EndpointSlices itself
		// (cmd/kube-apiserver/app/server.go, buildServiceResolver, used for admission webhooks
		// too), the TLS server name stays <service>.<namespace>.svc.
		"--enable-aggregator-routing=true",
	}})
	t.Cleanup(n.cleanup(t))
	// The API server's calls to the kubelet (logs, exec, attach, port-forward) are authorized by
	// the kubelet through a SubjectAccessReview: bind the role kubeadm binds for them. envtest's
	// API server authorizes with RBAC only (its --authorization-mode cannot be given twice), so
	// the kubelet gets the bootstrap system:node role through its group, as before the Node
	// authorizer existed.
	for _, b := range []struct {
		name, role string
		subject    rbacv1.Subject
	}{
		{"ekslink-e2e:apiserver-kubelet-client", "system:kubelet-api-admin", envtest.UserSubject(kubeletClientUser)},
		{"ekslink-e2e:nodes", "system:node", rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}},
	} {
		if _, err := n.Env.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: b.name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.role},
			Subjects:   []rbacv1.Subject{b.subject},
		}, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("binding %s: %w", b.role, err)
		}
	}

	saKey, err := envtest.PrivateKeyPEM(n.Env.SigningKeys[0])
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(pki, "sa.key"), saKey, 0o600); err != nil {
		return nil, err
	}
	// kube-root-ca.crt, which every namespace gets: the control plane's CA and the node CA.
	if err := os.WriteFile(filepath.Join(pki, "root-ca.crt"), n.CABundle(), 0o600); err != nil {
		return nil, err
	}
	return tokens, nil
}

// kubeletClientUser is the user of the API server's client certificate for the kubelet.
const kubeletClientUser = "ekslink-e2e:apiserver-kubelet-client"

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeKubeconfig writes a kubeconfig for the control plane with a bearer token.
func (n *Node) writeKubeconfig(name, token string) (string, error) {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: e2e
  context: {cluster: e2e, user: %s}
current-context: e2e
`, n.Env.URL, n.Env.CAFile, name, token, name)
	path := filepath.Join(n.Dir, "pki", name+".kubeconfig")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

func (n *Node) startControllers(bins envtest.Binaries, tokens map[string]string) error {
	kcmConfig, err := n.writeKubeconfig("kube-controller-manager", tokens["kcm"])
	if err != nil {
		return err
	}
	n.kcm, err = startProcess("kube-controller-manager", filepath.Join(n.Dir, "logs", "kube-controller-manager.log"),
		filepath.Join(bins.Dir, "kube-controller-manager"),
		"--kubeconfig="+kcmConfig,
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+filepath.Join(n.Dir, "pki", "sa.key"),
		"--root-ca-file="+filepath.Join(n.Dir, "pki", "root-ca.crt"),
		"--flex-volume-plugin-dir="+filepath.Join(n.Dir, "volume-plugins"),
		"--leader-elect=false",
		"--secure-port=0",
		"--controllers=*",
		"--v=1",
	)
	if err != nil {
		return err
	}
	schedConfig, err := n.writeKubeconfig("kube-scheduler", tokens["scheduler"])
	if err != nil {
		return err
	}
	n.scheduler, err = startProcess("kube-scheduler", filepath.Join(n.Dir, "logs", "kube-scheduler.log"),
		filepath.Join(bins.Dir, "kube-scheduler"),
		"--kubeconfig="+schedConfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--v=1",
	)
	return err
}
