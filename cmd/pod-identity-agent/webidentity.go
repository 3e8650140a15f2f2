package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ekslink/ekslink/manifest/flagname"
	"github.com/ekslink/ekslink/podidentity"
	"github.com/ekslink/ekslink/podidentity/association"
	"github.com/ekslink/ekslink/podidentity/webidentity"
)

// Backends of the server command.
const (
	backendEKSAuth     = "eks-auth"
	backendWebIdentity = "web-identity"
)

// webIdentityFlags select and configure the credential backend: EKS Auth (EKS clusters) or STS web
// identity with associations kept in the cluster (any cluster; podidentity/webidentity).
type webIdentityFlags struct {
	backend      string
	kubeconfig   string
	nodeName     string
	associations string
	perPod       bool
	syncTimeout  time.Duration
}

func (f *webIdentityFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.backend, flagname.Backend, backendEKSAuth, "where credentials come from: eks-auth (EKS clusters) or web-identity (any cluster: STS AssumeRoleWithWebIdentity with the pod's token, associations from a ConfigMap)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "web-identity: kubeconfig file (default: in-cluster configuration)")
	fs.StringVar(&f.nodeName, "node-name", "", "web-identity: this node's name; only its pods' tokens are accepted (empty: any pod) [env NODE_NAME]")
	fs.StringVar(&f.associations, flagname.AssociationsConfigMap, association.DefaultNamespace+"/"+association.DefaultName, "web-identity: <namespace>/<name> of the associations ConfigMap")
	fs.BoolVar(&f.perPod, flagname.PerPodSessions, false, "web-identity: one STS session per pod (named after the pod) instead of one per service account and role")
	fs.DurationVar(&f.syncTimeout, "sync-timeout", time.Minute, "web-identity: how long to wait at start for the cluster's keys, pods and associations")
}

// start builds the web identity backend and waits until it is ready; its watches stop with ctx.
func (f *webIdentityFlags) start(ctx context.Context, cfg aws.Config, log logr.Logger, reg prometheus.Registerer) (podidentity.Upstream, error) {
	ns, name, ok := strings.Cut(f.associations, "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("--associations-configmap %q: want <namespace>/<name>", f.associations)
	}
	var rc *rest.Config
	var err error
	if f.kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("--backend=web-identity: Kubernetes configuration: %w", err)
	}
	rc.UserAgent = "pod-identity-agent"
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	ix := association.NewIndex(kube, association.IndexOptions{Options: association.Options{Namespace: ns, Name: name}, Logger: log.WithName("associations")})
	go ix.Run(ctx)
	b, err := webidentity.NewFromConfig(cfg, kube, ix, func(o *webidentity.Options) {
		o.NodeName = f.nodeName
		o.PerPodSessions = f.perPod
		o.Logger = log.WithName("webidentity")
		o.Registerer = reg
	})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, f.syncTimeout)
	defer cancel()
	if err := b.Start(sctx); err != nil {
		return nil, err
	}
	return b, nil
}
