//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ekslink/ekslink/internal/cli"
)

func runInit(ctx context.Context, o *initOptions) error {
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("opening netlink: %w", err)
	}
	defer h.Close()
	return ensureLinkAddresses(h, o.linkName, o.addresses, cli.NewLogger(os.Stderr, int(o.verbosity)))
}

// ensureLinkAddresses creates the dummy link if needed, brings it up and adds each address that is
// not there yet. It fails only when the link cannot be set up or no address could be configured.
func ensureLinkAddresses(h *netlink.Handle, name string, cidrs []string, log logr.Logger) error {
	if name == "" || len(name) > 15 {
		return fmt.Errorf("link name %q must be 1-15 characters", name)
	}
	link, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		la := netlink.NewLinkAttrs()
		la.Name = name
		err := h.LinkAdd(&netlink.Dummy{LinkAttrs: la})
		if errors.Is(err, unix.EOPNOTSUPP) {
			// Kernels built without the dummy driver: a bridge without ports is an equally inert
			// local interface for the addresses.
			log.Info("dummy links not supported by this kernel; using a port-less bridge", "link", name)
			err = h.LinkAdd(&netlink.Bridge{LinkAttrs: la})
		}
		if err != nil {
			return fmt.Errorf("creating link %s: %w", name, err)
		}
		if link, err = h.LinkByName(name); err != nil {
			return fmt.Errorf("reading link %s after creating it: %w", name, err)
		}
		log.Info("created link", "link", name, "type", link.Type())
	case err != nil:
		return fmt.Errorf("reading link %s: %w", name, err)
	case link.Type() != "dummy" && link.Type() != "bridge":
		return fmt.Errorf("link %s exists but is a %s link, not dummy: choose another --link-name", name, link.Type())
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("bringing link %s up: %w", name, err)
	}
	configured := 0
	var errs []error
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		ip, ipnet, err := net.ParseCIDR(c)
		if err != nil {
			return fmt.Errorf("address %q is not a CIDR (e.g. 169.254.170.23/32): %w", c, err)
		}
		ipnet.IP = ip
		addr := &netlink.Addr{IPNet: ipnet}
		if ip.To4() == nil {
			// No duplicate address detection: the address is node-local and must be usable at once.
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrReplace(link, addr); err != nil {
			log.Error(err, "could not add address; listeners on it will fail", "link", name, "address", c)
			errs = append(errs, fmt.Errorf("%s: %w", c, err))
			continue
		}
		configured++
		log.Info("address configured", "link", name, "address", c)
	}
	if configured == 0 {
		return fmt.Errorf("no address could be configured on %s: %w", name, errors.Join(errs...))
	}
	return nil
}
