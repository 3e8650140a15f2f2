package workloads_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/charts"
	"github.com/ekslink/ekslink/envtest/awsfake"
	"github.com/ekslink/ekslink/manifest"
	"github.com/ekslink/ekslink/test/e2e/node"
)

// The console users of the connector test: Alice is granted to the proxy (GrantedARNs, the
// ClusterRole AWS documents) and holds seed 001's console-restricted-access.yaml; Mallory holds
// nothing.
const (
	alice   = "arn:aws:iam::111122223333:user/Alice"
	mallory = "arn:aws:iam::111122223333:user/Mallory"
	// seedARN is the console user of seed 001's YAML (impersonation/rbac/testdata).
	seedARN = "arn:aws:iam::1234567890:user/Alice"
	// saCABundle is the service-account volume's ca.crt (kube-root-ca.crt), which also verifies
	// the local AWS endpoints (node.ServeTLS).
	saCABundle = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// TestConnector installs the connector on a real node, once through the renderer and once through
// the Helm chart (helm install), with the image "make images" builds and the test stand-in for the SSM agent
// (cmd/ssm-agent), against the local SSM endpoint (envtest/awsfake) on the node IP, which the init
// container reaches through the SDK's standard AWS_ENDPOINT_URL_SSM and AWS_CA_BUNDLE. In each
// install the pod becomes Ready with the rendered probes and security contexts; the init container
// registered once (one RegisterManagedInstance call), wrote the state Secret and the vault the
// agent reads; a request the agent sends to the proxy's socket with Alice's ARN gets what the API
// server allows Alice (seed 001's RBAC), Mallory's and an anonymous one do not; and after the pod is
// deleted its replacement is Ready with the same registration and no further SSM call.
func TestConnector(t *testing.T) {
	n := node.Start(t, node.Options{})
	fake, err := awsfake.Start(awsfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	ssmURL := n.ServeTLS(t, fake.SSM.Server.Config.Handler)
	image := shippedImage(t, n, "eks-connector")

	// What Alice may do: seed 001's console-restricted-access.yaml as published, for Alice's ARN.
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "impersonation", "rbac", "testdata", "console-restricted-access.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	seed, err := manifest.Decode([]byte(strings.ReplaceAll(string(raw), seedARN, alice)))
	if err != nil {
		t.Fatal(err)
	}
	apply(t, n, seed)

	env := map[string]string{"AWS_ENDPOINT_URL_SSM": ssmURL, "AWS_CA_BUNDLE": saCABundle}
	t.Run("renderer", func(t *testing.T) {
		id, code := registerCluster(t, fake, "renderer")
		var envVars []corev1.EnvVar
		for k, v := range env {
			envVars = append(envVars, corev1.EnvVar{Name: k, Value: v})
		}
		objs, err := manifest.RenderConnector(manifest.ConnectorOptions{
			Replicas: 1, Region: fake.Region(), ActivationID: id, ActivationCode: code,
			GrantedARNs: []string{alice}, Image: image, AgentImage: n.Image("ssm-agent"), Env: envVars,
		})
		if err != nil {
			t.Fatal(err)
		}
		applyRendered(t, n, objs)
		checkConnector(t, n, fake, id, manifest.DefaultNamespace, manifest.DefaultName, manifest.DefaultStateSecretPrefix)
	})
	t.Run("helm", func(t *testing.T) {
		id, code := registerCluster(t, fake, "helm")
		const ns, name = "eks-connector-helm", "eks-connector-helm"
		repo, tag := splitRef(image)
		agentRepo, agentTag := splitRef(n.Image("ssm-agent"))
		envValues := map[string]any{}
		for k, v := range env {
			envValues[k] = v
		}
		helmInstall(t, n, charts.Connector, "eks-connector", ns, map[string]any{
			"activation":  map[string]any{"id": id, "code": code},
			"region":      fake.Region(),
			"replicas":    1,
			"name":        name,
			"grantedARNs": []any{alice},
			"images": map[string]any{
				"connector": map[string]any{"repository": repo, "tag": tag},
				"ssmAgent":  map[string]any{"repository": agentRepo, "tag": agentTag},
			},
			"env": envValues,
		})
		checkConnector(t, n, fake, id, ns, name, manifest.DefaultStateSecretPrefix)
	})
}

// registerCluster is "aws eks register-cluster" against the local EKS endpoint: it returns the
// activation id and code.
func registerCluster(t *testing.T, fake *awsfake.Set, name string) (string, string) {
	t.Helper()
	client := eks.NewFromConfig(fake.Config(), func(o *eks.Options) { o.BaseEndpoint = aws.String(fake.EKS.URL) })
	out, err := client.RegisterCluster(context.Background(), &eks.RegisterClusterInput{
		Name: aws.String(name),
		ConnectorConfig: &ekstypes.ConnectorConfigRequest{
			Provider: ekstypes.ConnectorConfigProviderOther,
			RoleArn:  aws.String("arn:aws:iam::111122223333:role/eks-connector-agent"),
		},
	})
	if err != nil {
		t.Fatalf("RegisterCluster: %v", err)
	}
	return aws.ToString(out.Cluster.ConnectorConfig.ActivationId), aws.ToString(out.Cluster.ConnectorConfig.ActivationCode)
}

// splitRef splits repository:tag.
func splitRef(ref string) (string, string) {
	i := strings.LastIndex(ref, ":")
	if i < strings.LastIndex(ref, "/") {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}

var registeredRE = regexp.MustCompile(`ssm-agent: registered instance (\S+) fingerprint (\S+)`)

func checkConnector(t *testing.T, n *node.Node, fake *awsfake.Set, activationID, ns, name, statePrefix string) {
	t.Helper()
	ctx := context.Background()
	podName := name + "-0"
	started := time.Now()
	pod := n.WaitReady(t, ns, podName, "", 3*time.Minute)
	t.Logf("%s/%s Ready %s after the apply", ns, podName, time.Since(started).Round(time.Millisecond))

	// One registration, at the local SSM endpoint, for this activation.
	var registered []awsfake.Instance
	for _, inst := range fake.Instances() {
		if inst.ActivationID == activationID {
			registered = append(registered, inst)
		}
	}
	if len(registered) != 1 {
		t.Fatalf("instances registered with activation %s: %d, want 1", activationID, len(registered))
	}
	calls := fake.RegisterCalls()

	// The agent read that registration from the vault the init container wrote.
	agentLog := n.PodLog(t, ns, podName, "connector-agent")
	m := registeredRE.FindStringSubmatch(agentLog)
	if m == nil || m[1] != registered[0].InstanceID || m[2] != registered[0].Fingerprint {
		t.Fatalf("the SSM agent's log does not report instance %s with fingerprint %s:\n%s", registered[0].InstanceID, registered[0].Fingerprint, agentLog)
	}
	// The state Secret holds it.
	stateName := statePrefix + "-0"
	sec, err := n.Env.Client.CoreV1().Secrets(ns).Get(ctx, stateName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var state strings.Builder
	for _, v := range sec.Data {
		state.Write(v)
	}
	if !strings.Contains(state.String(), registered[0].InstanceID) {
		t.Fatalf("state Secret %s/%s does not hold instance %s", ns, stateName, registered[0].InstanceID)
	}

	// Console requests, as the agent sends them to the proxy's socket.
	request := func(arn, path string) string {
		t.Helper()
		args := []string{"/ssm-agent", "request"}
		if arn != "" {
			args = append(args, "-arn", arn)
		}
		return n.Exec(t, ns, podName, "connector-agent", append(args, path)...)
	}
	if out := request(alice, "/api/v1/namespaces/default/pods"); !strings.HasPrefix(out, "status 200\n") || !strings.Contains(out, `"kind":"PodList"`) {
		t.Errorf("Alice listing pods in default (seed RBAC allows it) through the proxy:\n%s", out)
	}
	if out := request(alice, "/api/v1/namespaces/kube-system/secrets"); !strings.HasPrefix(out, "status 403\n") || !strings.Contains(out, `User \"`+alice+`\" cannot list resource \"secrets\"`) {
		t.Errorf("Alice listing secrets in kube-system (not granted) through the proxy: want the API server's 403 for her ARN:\n%s", out)
	}
	if out := request(mallory, "/api/v1/namespaces/default/pods"); !strings.HasPrefix(out, "status 403\n") || strings.Contains(out, "PodList") {
		t.Errorf("Mallory (not granted to the proxy) listing pods: want 403:\n%s", out)
	}
	if out := request("", "/api/v1/namespaces/default/pods"); strings.HasPrefix(out, "status 200\n") || strings.Contains(out, "PodList") {
		t.Errorf("a request without an identity header was not refused:\n%s", out)
	}

	// A deleted pod comes back with the same registration and no second SSM call.
	if err := n.Env.Client.CoreV1().Pods(ns).Delete(ctx, podName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	n.WaitReady(t, ns, podName, pod.UID, 3*time.Minute)
	t.Logf("%s/%s replaced and Ready in %s", ns, podName, time.Since(restarted).Round(time.Millisecond))
	if got := fake.RegisterCalls(); got != calls {
		t.Errorf("RegisterManagedInstance calls after the pod was replaced: %d, want %d (no new registration)", got, calls)
	}
	agentLog = n.PodLog(t, ns, podName, "connector-agent")
	if m := registeredRE.FindStringSubmatch(agentLog); m == nil || m[1] != registered[0].InstanceID || m[2] != registered[0].Fingerprint {
		t.Errorf("the replaced pod's SSM agent does not report the same instance %s:\n%s", registered[0].InstanceID, agentLog)
	}
	if out := request(alice, "/api/v1/namespaces/default/pods"); !strings.HasPrefix(out, "status 200\n") {
		t.Errorf("Alice through the replaced pod's proxy:\n%s", out)
	}
}
