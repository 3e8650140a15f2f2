package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/config"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ekslink/ekslink/eksauth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ekstoken:", err)
		stop()
		os.Exit(1)
	}
}

// run parses args, loads the AWS configuration the SDK's way (environment, shared files, instance
// or pod role) and lists the namespace's pods, or prints a kubeconfig, on stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ekstoken", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cluster := fs.String("cluster-name", "", "EKS cluster name (required)")
	namespace := fs.String("namespace", "default", "namespace whose pods are listed")
	printKubeconfig := fs.Bool("print-kubeconfig", false, "print a kubeconfig for the cluster (exec plugin \"ekslink token\") instead of listing pods")
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
	if *printKubeconfig {
		c, err := eksauth.DescribeCluster(ctx, cfg, *cluster, eksauth.ClusterOptions{})
		if err != nil {
			return err
		}
		kc, err := eksauth.Kubeconfig(c, eksauth.KubeconfigOptions{})
		if err != nil {
			return err
		}
		_, err = stdout.Write(kc)
		return err
	}
	// The whole embedding: one call gives a rest.Config whose token renews itself.
	restCfg, err := eksauth.RESTConfig(ctx, cfg, *cluster, eksauth.ClusterOptions{})
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	pods, err := client.CoreV1().Pods(*namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing pods in %s: %w", *namespace, err)
	}
	for _, p := range pods.Items {
		fmt.Fprintf(stdout, "%s\t%s\n", p.Name, p.Status.Phase)
	}
	return nil
}
