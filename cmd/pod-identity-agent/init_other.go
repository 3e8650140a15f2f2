//go:build !linux

package main

import (
	"context"
	"fmt"
	"runtime"
)

func runInit(ctx context.Context, o *initOptions) error {
	return fmt.Errorf("init configures link-local addresses with netlink and only runs on Linux (this is %s)", runtime.GOOS)
}
