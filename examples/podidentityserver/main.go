package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/go-logr/logr"

	"github.com/ekslink/ekslink/podidentity"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "podidentityserver:", err)
		stop()
		os.Exit(1)
	}
}

// run parses args, loads the AWS configuration the SDK's way (environment, shared files, instance
// role) and serves until ctx ends. listening (tests) is told the address once it listens.
func run(ctx context.Context, args []string, stderr io.Writer, listening func(net.Addr)) error {
	fs := flag.NewFlagSet("podidentityserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cluster := fs.String("cluster-name", "", "EKS cluster the pods' tokens belong to (required)")
	listen := fs.String("listen", net.JoinHostPort(podidentity.AgentIPv4, "80"), "address to serve the credentials endpoint on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cluster == "" {
		return errors.New("--cluster-name is required")
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("loading the AWS configuration: %w", err)
	}
	log := logr.FromSlogHandler(slog.NewJSONHandler(stderr, nil))
	srv, err := newServer(cfg, *cluster, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if listening != nil {
		listening(ln.Addr())
	}
	log.Info("serving pod credentials", "addr", ln.Addr().String(), "cluster", *cluster)
	return srv.Serve(ctx, ln)
}

// newServer is the whole embedding: an EKS Auth client built like an SDK client (its endpoint
// follows AWS_ENDPOINT_URL_EKS_AUTH like the SDK's clients), and the server that caches and serves
// its answers.
func newServer(cfg aws.Config, cluster string, log logr.Logger) (*podidentity.Server, error) {
	client, err := podidentity.NewFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	return podidentity.NewServer(client, podidentity.ServerOptions{ClusterName: cluster, Logger: log})
}
