package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
)

// Addresses pods reach beyond the bridge (see network.podRoutes).
const (
	// KubernetesServiceIP is the ClusterIP of the default/kubernetes Service (the first address of
	// envtest's --service-cluster-ip-range 10.96.0.0/16): what in-cluster clients dial
	// (KUBERNETES_SERVICE_HOST, port 443).
	KubernetesServiceIP = "10.96.0.1"
	// PodIdentityAgentIPv4 and PodIdentityAgentIPv6 are the EKS Pod Identity agent's addresses,
	// which its init container creates on the node on PodIdentityAgentLink.
	PodIdentityAgentIPv4 = "169.254.170.23"
	PodIdentityAgentIPv6 = "fd00:ec2::23"
	// PodIdentityAgentLink is the link the agent's init container creates (its --link-name
	// default). Stop deletes it; it must not exist when the node starts.
	PodIdentityAgentLink = "pod-id-link0"
)

// hostLinks are links workloads create on the node's host network (not in the node's directory):
// Start refuses to run when one exists already (it would not be the workload's), Stop deletes
// them and Leftovers reports them.
var hostLinks = []string{PodIdentityAgentLink}

func checkHostLinks() error {
	for _, name := range hostLinks {
		if _, err := netlink.LinkByName(name); err == nil {
			return fmt.Errorf("link %s exists before the node started; it would hide whether the workloads create it: remove it (ip link del %s)", name, name)
		}
	}
	return nil
}

func removeHostLinks() error {
	var errs []error
	for _, name := range hostLinks {
		if link, err := netlink.LinkByName(name); err == nil {
			if err := netlink.LinkDel(link); err != nil {
				errs = append(errs, fmt.Errorf("deleting link %s, which a workload created: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// serviceProxy is the node's kube-proxy for the one Service that matters: it owns
// KubernetesServiceIP (a /32 on the bridge, so it goes with the bridge) and passes TCP
// connections on port 443 through to the API server on the node IP. TLS stays end to end: the API
// server answers connections to the node IP with the certificate of --tls-sni-cert-key (the
// Service IP, the node IP and the kubernetes.default.svc names, signed by the node CA that
// kube-root-ca.crt carries), so in-cluster clients verify it as in any cluster.
type serviceProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startServiceProxy(bridge string, target string) (*serviceProxy, error) {
	link, err := netlink.LinkByName(bridge)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(KubernetesServiceIP)
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)}}); err != nil {
		return nil, fmt.Errorf("adding the Service address %s/32 to bridge %s: %w", ip, bridge, err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(KubernetesServiceIP, "443"))
	if err != nil {
		return nil, fmt.Errorf("listening on the kubernetes Service address: %w", err)
	}
	p := &serviceProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *serviceProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.pipe(c)
	}
}

func (p *serviceProxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *serviceProxy) pipe(client net.Conn) {
	defer p.wg.Done()
	defer client.Close()
	upstream, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer upstream.Close()
	p.track(client, true)
	p.track(upstream, true)
	defer p.track(client, false)
	defer p.track(upstream, false)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, upstream); done <- struct{}{} }()
	<-done
}

func (p *serviceProxy) stop() {
	if p == nil {
		return
	}
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// apiServerTarget is the API server's port on the node IP (it listens on every address).
func (n *Node) apiServerTarget() (string, error) {
	u, err := url.Parse(n.Env.URL)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(n.IP.String(), u.Port()), nil
}

// CABundle is what pods trust in kube-root-ca.crt (the service-account ca.crt): the control plane's
// CA and the node CA, which signs the API server's certificate for the Service address and the
// certificates of ServeTLS.
func (n *Node) CABundle() []byte { return append(append([]byte(nil), n.Env.CAPEM...), n.ca.PEM...) }

// ServeTLS serves h over HTTPS on the node IP (reachable from pods and from the host network, from
// nowhere else), with a certificate for the node IP signed by the node CA, so pods verify it with
// the ca.crt of their service-account volume. It returns the https URL; the server closes at test
// cleanup. The end-to-end tests serve the local AWS endpoints (envtest/awsfake) this way.
func (n *Node) ServeTLS(t testing.TB, h http.Handler) string {
	t.Helper()
	certPEM, keyPEM, err := n.ca.Issue("ekslink-e2e-endpoint", nil, nil, []net.IP{n.IP}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatalf("node: issuing a serving certificate: %v", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(n.IP.String(), "0"))
	if err != nil {
		t.Fatalf("node: listening on the node IP: %v", err)
	}
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String()
}
