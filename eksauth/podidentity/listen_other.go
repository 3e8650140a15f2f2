//go:build !linux

package podidentity

import "syscall"

// listenControl leaves sockets alone outside Linux.
func listenControl(network, address string, c syscall.RawConn) error { return nil }
