// Command demo runs the connector end to end on loopback with a readable transcript: a real
// control plane, embedded AWS endpoints, eks-connector init and proxy, console access for two IAM
// ARNs, the pod identity agent with the AWS SDK as client, self-hosted IRSA documents checked
// against a real token, and the pod identity webhook mutating a pod whose projected token the AWS
// SDK trades at STS AssumeRoleWithWebIdentity. `make demo` runs it; it exits 0 only if every step behaved as expected.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ekslink/ekslink/internal/demo"
)

func main() {
	binDir := flag.String("bin-dir", "", "directory holding prebuilt eks-connector, pod-identity-agent, pod-identity-webhook and workload binaries (default: build them)")
	keep := flag.String("work-dir", "", "keep the demo's files (kubeconfig, tokens, vault, process logs) in this directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	err := demo.Run(ctx, demo.Options{Transcript: os.Stdout, BinDir: *binDir, WorkDir: *keep})
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo FAILED after %s: %v\n", time.Since(start).Round(time.Second), err)
		cancel()
		stop()
		os.Exit(1)
	}
	fmt.Printf("demo passed in %s\n", time.Since(start).Round(time.Second))
}
