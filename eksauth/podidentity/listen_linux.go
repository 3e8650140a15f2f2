//go:build linux

package podidentity

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// listenControl sets SO_REUSEPORT so that a new agent (DaemonSet rolling update) binds the agent
// addresses while the old one is still draining, instead of failing its bind. Only processes of
// the same user can join the port group.
func listenControl(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
