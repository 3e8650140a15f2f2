package workloads_test

import (
	"context"
	"crypto"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/ekslink/ekslink/charts"
	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/manifest"
	"github.com/ekslink/ekslink/test/e2e/node"
)

// The workload of the pod identity test and the association that gives it a role.
const (
	agentCluster = "e2e-cluster"
	appNamespace = "apps"
	appSA        = "app"
	appRole      = "arn:aws:iam::111122223333:role/e2e-app"
	// appCaller is what STS reports for the credentials EKS Auth issues for the association.
	appCaller = "arn:aws:sts::111122223333:assumed-role/e2e-app/eks-" + agentCluster + "-" + appSA
	// podIdentityTokenDir is where the EKS pod identity webhook mounts the token (audience
	// pods.eks.amazonaws.com) and points AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.
	podIdentityTokenDir = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
)

// TestPodIdentityAgent installs the EKS Pod Identity agent DaemonSet on a real node, once through
// the renderer and once through the Helm chart (helm install), with the image "make images" builds, in the
// shipped hybrid-node mode (the node's credentials file mounted from the host, followed with
// --rotate-credentials), against the local EKS Auth endpoint (envtest/awsfake) on the node IP. In
// each install the agent pod becomes Ready with the rendered probes and security contexts; its
// init container has created PodIdentityAgentLink with 169.254.170.23/32 and fd00:ec2::23/128 on
// the node (absent before: node.Start refuses to run with the link present; node.Stop removes it
// and fails the test if it is left); the server answers on both addresses; and a pod on the
// bridge network using the AWS SDK's container credentials provider through
// http://169.254.170.23/v1/credentials with its projected pods.eks.amazonaws.com token gets
// credentials from EKS Auth that STS knows as the associated role.
func TestPodIdentityAgent(t *testing.T) {
	n := node.Start(t, node.Options{})
	var keys []crypto.PublicKey
	for _, k := range n.Env.SigningKeys {
		keys = append(keys, k.Public())
	}
	fake, err := awsfake.Start(awsfake.Options{ServiceAccountIssuer: n.Env.Issuer, ServiceAccountKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	fake.Associate(awsfake.Association{Cluster: agentCluster, Namespace: appNamespace, ServiceAccount: appSA, RoleARN: appRole})
	authURL := n.ServeTLS(t, fake.EKSAuth.Server.Config.Handler)
	stsURL := n.ServeTLS(t, fake.STS.Server.Config.Handler)
	image := shippedImage(t, n, "pod-identity-agent")

	// The hybrid node's credentials directory, as nodeadm keeps it: the credentials file (the
	// static test keys EKS Auth accepts), and here also the CA bundle verifying the local endpoint.
	credsDir := filepath.Join(n.Dir, "eks-hybrid", ".aws")
	if err := os.MkdirAll(credsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := fake.EKSAuth.Credentials()
	files := map[string][]byte{
		"credentials": fmt.Appendf(nil, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n", c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		"ca.crt":      n.CABundle(),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(credsDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"AWS_ENDPOINT_URL_EKS_AUTH": authURL, "AWS_CA_BUNDLE": filepath.Join(credsDir, "ca.crt")}

	createNamespace(t, n, appNamespace)
	if _, err := n.Env.Client.CoreV1().ServiceAccounts(appNamespace).Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: appSA}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n.WaitServiceAccount(t, manifest.DefaultPodIdentityNamespace)

	t.Run("renderer", func(t *testing.T) {
		var envVars []corev1.EnvVar
		for k, v := range env {
			envVars = append(envVars, corev1.EnvVar{Name: k, Value: v})
		}
		objs, err := manifest.RenderPodIdentityAgent(manifest.PodIdentityAgentOptions{
			ClusterName: agentCluster, Region: fake.Region(), Image: image, HybridCredentialsDir: credsDir, Env: envVars,
		})
		if err != nil {
			t.Fatal(err)
		}
		applyRendered(t, n, objs)
		checkAgent(t, n, fake, manifest.DefaultPodIdentityName, stsURL, "renderer")
		// The chart installs the same DaemonSet next: this one goes first (the link stays).
		deleteAndWait(t, n, schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"},
			manifest.DefaultPodIdentityNamespace, manifest.DefaultPodIdentityName, manifest.LabelName+"="+manifest.DefaultPodIdentityName)
	})
	t.Run("helm", func(t *testing.T) {
		repo, tag := splitRef(image)
		envValues := map[string]any{}
		for k, v := range env {
			envValues[k] = v
		}
		helmInstall(t, n, charts.PodIdentityAgent, "eks-pod-identity-agent", manifest.DefaultPodIdentityNamespace, map[string]any{
			"clusterName": agentCluster,
			"region":      fake.Region(),
			"image":       map[string]any{"repository": repo, "tag": tag},
			"hybrid":      map[string]any{"enabled": true, "credentialsDir": credsDir},
			"env":         envValues,
		})
		checkAgent(t, n, fake, manifest.DefaultPodIdentityName, stsURL, "helm")
	})
}

func checkAgent(t *testing.T, n *node.Node, fake *awsfake.Set, name, stsURL, workload string) {
	t.Helper()
	ctx := context.Background()
	ns := manifest.DefaultPodIdentityNamespace
	started := time.Now()
	var podName string
	for deadline := time.Now().Add(time.Minute); podName == ""; {
		pods, err := n.Env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: manifest.LabelName + "=" + name})
		if err == nil && len(pods.Items) == 1 {
			podName = pods.Items[0].Name
		} else if time.Now().After(deadline) {
			t.Fatalf("no pod of DaemonSet %s/%s a minute after the apply (%v)", ns, name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	n.WaitReady(t, ns, podName, "", 3*time.Minute)
	t.Logf("%s/%s Ready %s after the apply", ns, podName, time.Since(started).Round(time.Millisecond))

	// The init container created the link-local addresses on the node.
	link, err := netlink.LinkByName(node.PodIdentityAgentLink)
	if err != nil {
		t.Fatalf("the agent's init container did not create %s on the node: %v", node.PodIdentityAgentLink, err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, a := range addrs {
		have[a.IPNet.String()] = true
	}
	for _, want := range []string{node.PodIdentityAgentIPv4 + "/32", node.PodIdentityAgentIPv6 + "/128"} {
		if !have[want] {
			t.Errorf("%s lacks %s: %v", node.PodIdentityAgentLink, want, addrs)
		}
	}
	// The server answers on both (a request without a token is refused, by the agent).
	client := &http.Client{Timeout: 10 * time.Second}
	for _, host := range []string{node.PodIdentityAgentIPv4, "[" + node.PodIdentityAgentIPv6 + "]"} {
		resp, err := client.Get("http://" + host + "/v1/credentials")
		if err != nil {
			t.Errorf("the agent does not answer on %s: %v", host, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("GET http://%s/v1/credentials without a token: status %d, want the agent's 4xx", host, resp.StatusCode)
		}
	}

	// A pod on the bridge network gets credentials through the container credentials provider.
	calls := fake.AuthCalls()
	pod := credentialsPod("credentials-"+workload, n, stsURL, fake.Region())
	if _, err := n.Env.Client.CoreV1().Pods(appNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := n.WaitPhase(t, appNamespace, pod.Name, corev1.PodSucceeded)
	out := n.PodLog(t, appNamespace, pod.Name, "")
	t.Logf("workload %s:\n%s", pod.Name, out)
	if !strings.Contains(out, "credentials source CredentialsEndpointProvider ") {
		t.Errorf("the workload's credentials did not come from the container credentials provider:\n%s", out)
	}
	if !strings.Contains(out, "caller "+appCaller+"\n") {
		t.Errorf("the workload's credentials are not those of %s:\n%s", appCaller, out)
	}
	if ip := net.ParseIP(done.Status.PodIP); ip == nil || !n.PodCIDR.Contains(ip) {
		t.Errorf("the workload ran at %q, not on the bridge network %s", done.Status.PodIP, n.PodCIDR)
	}
	if got := fake.AuthCalls(); got <= calls {
		t.Errorf("AssumeRoleForPodIdentity calls: %d before the workload, %d after: the credentials did not come from EKS Auth", calls, got)
	}
}

// credentialsPod runs cmd/aws-credentials as the EKS pod identity webhook would have set it up:
// the token of audience pods.eks.amazonaws.com projected, AWS_CONTAINER_CREDENTIALS_FULL_URI and
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE set. STS is the local one (its CA in ca.crt).
func credentialsPod(name string, n *node.Node, stsURL, region string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			ServiceAccountName:            appSA,
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "app",
				Image:           n.Image("aws-credentials"),
				ImagePullPolicy: corev1.PullNever,
				Env: []corev1.EnvVar{
					{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: "http://" + node.PodIdentityAgentIPv4 + "/v1/credentials"},
					{Name: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", Value: podIdentityTokenDir + "/eks-pod-identity-token"},
					{Name: "AWS_REGION", Value: region},
					{Name: "AWS_EC2_METADATA_DISABLED", Value: "true"},
					{Name: "AWS_ENDPOINT_URL_STS", Value: stsURL},
					{Name: "AWS_CA_BUNDLE", Value: saCABundle},
				},
				SecurityContext: &corev1.SecurityContext{
					ReadOnlyRootFilesystem:   ptr.To(true),
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "eks-pod-identity-token", MountPath: podIdentityTokenDir, ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{Name: "eks-pod-identity-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
					Audience: awsfake.PodIdentityAudience, ExpirationSeconds: ptr.To[int64](86400), Path: "eks-pod-identity-token",
				}}},
			}}}},
		},
	}
}
