//go:build linux

package podidentity

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Issue 15 item 5: while the agent listens, nobody else can bind its address and port, not even a
// root process on the host network that sets SO_REUSEPORT itself (before, the agent's own
// SO_REUSEPORT let such a process receive a share of the pods' tokens). Linux only: the option and
// its port groups are Linux semantics.
func TestSecondBindOnTheAgentAddressFails(t *testing.T) {
	lns, errs := Listen(context.Background(), []string{"127.0.0.1:0"})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	defer lns[0].Close()
	addr := lns[0].Addr().String()
	port := strconv.Itoa(lns[0].Addr().(*net.TCPAddr).Port)

	// Another agent, with the same socket options as ours.
	if more, errs := Listen(context.Background(), []string{addr}); len(errs) != 1 || !errors.Is(errs[0], syscall.EADDRINUSE) {
		for _, ln := range more {
			ln.Close()
		}
		t.Errorf("second Listen on %s: %v, want address in use", addr, errs)
	}
	// An intruder that asks for SO_REUSEPORT, on the same address or on the wildcard address.
	intruder := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) }); err != nil {
			return err
		}
		return serr
	}}
	for _, a := range []string{addr, "0.0.0.0:" + port} {
		ln, err := intruder.Listen(context.Background(), "tcp", a)
		if err == nil {
			ln.Close()
			t.Errorf("an SO_REUSEPORT listener bound %s while the agent listens on %s", a, addr)
			continue
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("SO_REUSEPORT listener on %s: %v, want address in use", a, err)
		}
	}
}
