//go:build linux

package main

import (
	"net"
	"runtime"
	"testing"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// init runs against a fresh network namespace (needs CAP_SYS_ADMIN and CAP_NET_ADMIN, as root in
// this project's test environment), twice, to show it is idempotent.
func TestInitCreatesAgentAddressesIdempotently(t *testing.T) {
	h := newTestNamespace(t)
	cidrs := []string{"169.254.170.23/32", "fd00:ec2::23/128"}
	for i := range 2 {
		if err := ensureLinkAddresses(h, "pod-id-link0", cidrs, logr.Discard()); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	link, err := h.LinkByName("pod-id-link0")
	if err != nil {
		t.Fatal(err)
	}
	if (link.Type() != "dummy" && link.Type() != "bridge") || link.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("link %s type %s flags %v", link.Attrs().Name, link.Type(), link.Attrs().Flags)
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, a := range addrs {
		got[a.IPNet.String()]++
	}
	for _, c := range cidrs {
		if got[c] != 1 {
			t.Errorf("address %s present %d times (all: %v)", c, got[c], got)
		}
	}
}

func TestInitRefusesAForeignLinkAndBadAddresses(t *testing.T) {
	h := newTestNamespace(t)
	if err := ensureLinkAddresses(h, "lo", []string{"169.254.170.23/32"}, logr.Discard()); err == nil {
		t.Error("a non-dummy link was taken over")
	}
	if err := ensureLinkAddresses(h, "pod-id-link0", []string{"169.254.170.23"}, logr.Discard()); err == nil {
		t.Error("an address without prefix length was accepted")
	}
	if err := ensureLinkAddresses(h, "a-name-longer-than-15", []string{"169.254.170.23/32"}, logr.Discard()); err == nil {
		t.Error("an invalid link name was accepted")
	}
}

// newTestNamespace returns a netlink handle in a new network namespace, leaving the test goroutine's
// thread in its original namespace.
func newTestNamespace(t *testing.T) *netlink.Handle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		runtime.UnlockOSThread() // unshare failed: the thread is still in its own namespace
		t.Fatalf("creating a network namespace: %v: these tests need root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and deliberately do not skip; run them as root, e.g. in the project's test container", err)
	}
	if err := netns.Set(orig); err != nil {
		// The thread stays locked, so the runtime discards it instead of running other goroutines
		// in the test namespace.
		t.Fatalf("returning to the original network namespace: %v", err)
	}
	runtime.UnlockOSThread()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); ns.Close() })
	return h
}
