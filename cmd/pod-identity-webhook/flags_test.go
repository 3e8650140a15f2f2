package main

import (
	"testing"
)

// Every flag of the upstream's main.go (--version too: TestVersion) (aws/amazon-eks-pod-identity-webhook), with its default as
// pflag prints it, so that an existing Deployment's args keep their meaning.
func TestUpstreamFlagsAndDefaults(t *testing.T) {
	upstream := map[string]string{
		"port":                                   "443",
		"metrics-port":                           "9999",
		"kubeconfig":                             "",
		"kube-api":                               "",
		"tls-key":                                "/etc/webhook/certs/tls.key",
		"tls-cert":                               "/etc/webhook/certs/tls.crt",
		"tls-cipher-suites":                      "",
		"tls-min-version":                        "",
		"in-cluster":                             "true",
		"service-name":                           "pod-identity-webhook",
		"namespace":                              "eks",
		"tls-secret":                             "pod-identity-webhook",
		"annotation-prefix":                      "eks.amazonaws.com",
		"token-audience":                         "sts.amazonaws.com",
		"token-mount-path":                       "/var/run/secrets/eks.amazonaws.com/serviceaccount",
		"token-expiration":                       "86400",
		"aws-default-region":                     "",
		"sts-regional-endpoint":                  "false",
		"watch-config-map":                       "false",
		"compose-role-arn":                       "false",
		"watch-container-credentials-config":     "",
		"container-credentials-audience":         "pods.eks.amazonaws.com",
		"container-credentials-token-mount-path": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount",
		"container-credentials-token-volume-name": "eks-pod-identity-token",
		"container-credentials-token-path":        "eks-pod-identity-token",
		"container-credentials-full-uri":          "http://169.254.170.23/v1/credentials",
		"enable-debugging-handlers":               "false",
		"service-account-lookup-grace-period":     "0s",
		"resync-period":                           "1m0s",
		// klog flags its deploy/deployment-base.yaml passes
		"logtostderr": "true",
		"v":           "0",
	}
	root := newRootCommand()
	for name, def := range upstream {
		f := root.Flags().Lookup(name)
		if f == nil {
			t.Errorf("--%s is missing", name)
			continue
		}
		if f.DefValue != def {
			t.Errorf("--%s defaults to %q, the upstream to %q", name, f.DefValue, def)
		}
	}
}
