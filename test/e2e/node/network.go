package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
)

// ipForwardPath is the sysctl the bridge CNI plugin sets when it is the pods' gateway; Stop puts
// back the value it had.
const ipForwardPath = "/proc/sys/net/ipv4/ip_forward"

// network is the node's pod network: a Linux bridge owning the first address of a private /24,
// which is also the node's IP (the kubelet refuses a loopback node IP).
type network struct {
	bridge  string
	subnet  *net.IPNet
	nodeIP  net.IP
	forward []byte // ip_forward before the node started
}

// newNetwork creates the bridge on a free 10.244.N.0/24 (N random, so two nodes on one machine
// do not collide; subnets with routes already are skipped).
func newNetwork() (*network, error) {
	forward, err := os.ReadFile(ipForwardPath)
	if err != nil {
		return nil, err
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}
	for attempt := 0; attempt < 20; attempt++ {
		n := rand.IntN(254) + 1
		_, subnet, _ := net.ParseCIDR(fmt.Sprintf("10.244.%d.0/24", n))
		if overlaps(routes, subnet) {
			continue
		}
		name := fmt.Sprintf("ekse2e%d", n)
		if _, err := netlink.LinkByName(name); err == nil {
			continue
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := netlink.LinkAdd(br); err != nil {
			return nil, fmt.Errorf("creating bridge %s: %w", name, err)
		}
		nw := &network{bridge: name, subnet: subnet, nodeIP: net.IPv4(10, 244, byte(n), 1).To4(), forward: forward}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: nw.nodeIP, Mask: subnet.Mask}}
		if err := netlink.AddrAdd(br, addr); err != nil {
			_ = nw.remove()
			return nil, fmt.Errorf("adding %s to bridge %s: %w", addr, name, err)
		}
		if err := netlink.LinkSetUp(br); err != nil {
			_ = nw.remove()
			return nil, fmt.Errorf("bringing bridge %s up: %w", name, err)
		}
		return nw, nil
	}
	return nil, errors.New("no free 10.244.N.0/24 for the pod network after 20 tries")
}

func overlaps(routes []netlink.Route, subnet *net.IPNet) bool {
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones == 0 { // the default route covers everything
			continue
		}
		if r.Dst.Contains(subnet.IP) || subnet.Contains(r.Dst.IP) {
			return true
		}
	}
	return false
}

// writeConflist writes the CNI network containerd uses: bridge + host-local + loopback, with the
// bridge as the pods' gateway for the /24 and for podRoutes only (no default route, no ipMasq:
// nothing leaves the machine), and host-local's leases under the node's directory.
func (nw *network) writeConflist(confDir, ipamDir string) error {
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       "ekslink-e2e",
		"plugins": []any{
			map[string]any{
				"type":             "bridge",
				"bridge":           nw.bridge,
				"isGateway":        true,
				"isDefaultGateway": false,
				"ipMasq":           false,
				"hairpinMode":      true,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": ipamDir,
					"ranges": [][]map[string]string{{{
						"subnet":  nw.subnet.String(),
						"gateway": nw.nodeIP.String(),
					}}},
					"routes": nw.podRoutes(),
				},
			},
			map[string]any{"type": "loopback"},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(confDir, "10-ekslink-e2e.conflist"), data, 0o644)
}

// podRoutes are the host routes pods get through the node, besides the /24: the API server's
// Service address (KubernetesServiceIP, served by the node's forwarder) and the EKS Pod Identity
// agent's address (PodIdentityAgentIPv4, on the node's host network). On an EKS node the pod's
// default route covers both; here pods have no default route, so these two are all they reach
// beyond the bridge.
func (nw *network) podRoutes() []map[string]string {
	var out []map[string]string
	for _, dst := range []string{KubernetesServiceIP + "/32", PodIdentityAgentIPv4 + "/32"} {
		out = append(out, map[string]string{"dst": dst, "gw": nw.nodeIP.String()})
	}
	return out
}

// remove deletes the bridge (with the routes and veth ends on it) and restores ip_forward.
func (nw *network) remove() error {
	var errs []error
	if link, err := netlink.LinkByName(nw.bridge); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("deleting bridge %s: %w", nw.bridge, err))
		}
	}
	if cur, err := os.ReadFile(ipForwardPath); err == nil && strings.TrimSpace(string(cur)) != strings.TrimSpace(string(nw.forward)) {
		if err := os.WriteFile(ipForwardPath, nw.forward, 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring ip_forward: %w", err))
		}
	}
	return errors.Join(errs...)
}
