//go:build linux

package podidentity

import (
	"context"
	"testing"
	"time"
)

// A replacement agent binds the same address while the old one still serves (rolling update), and
// serves alone once the old one is gone.
func TestReplacementAgentBindsWhileTheOldOneDrains(t *testing.T) {
	lns, errs := Listen(context.Background(), []string{"127.0.0.1:0"})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	addr := lns[0].Addr().String()
	up := newUpstream(t, time.Now)
	old, err := NewServer(Options{ClusterName: "c1", Upstream: up.client(t, 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	oldCtx, stopOld := context.WithCancel(context.Background())
	oldDone := make(chan error, 1)
	go func() { oldDone <- old.Serve(oldCtx, lns[0]) }()

	next, errs := Listen(context.Background(), []string{addr})
	if len(errs) != 0 {
		t.Fatalf("replacement could not bind %s while the old agent serves: %v", addr, errs)
	}
	repl, err := NewServer(Options{ClusterName: "c1", Upstream: up.client(t, 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer repl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = repl.Serve(ctx, next[0]) }()
	stopOld()
	if err := <-oldDone; err != nil {
		t.Fatal(err)
	}
	a := &agent{Server: repl, url: "http://" + addr + CredentialsPath}
	for range 5 {
		if ans := a.get(t, makeToken(time.Now().Add(time.Hour), nil)); ans.status != 200 {
			t.Fatalf("after the old agent left: %d %s", ans.status, ans.raw)
		}
	}
}
