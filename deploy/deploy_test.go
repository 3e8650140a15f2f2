package deploy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/manifest"
)

var update = flag.Bool("update", false, "rewrite the checked-in YAML from manifest")

func TestMain(m *testing.M) { envtest.Main(m) }

func TestCheckedInYAMLMatchesTheRenderer(t *testing.T) {
	tests := []struct {
		file     string
		render   func() ([]byte, error)
		embedded []byte
	}{
		{"connector/eks-connector.yaml", manifest.ConnectorTemplate, ConnectorTemplate()},
		{"pod-identity-agent/eks-pod-identity-agent.yaml", manifest.PodIdentityAgentTemplate, PodIdentityAgentTemplate()},
		{"pod-identity-webhook/pod-identity-webhook.yaml", manifest.WebhookTemplate, WebhookTemplate()},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			want, err := tt.render()
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(filepath.FromSlash(tt.file), want, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			onDisk, err := os.ReadFile(filepath.FromSlash(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if string(onDisk) != string(want) {
				t.Fatalf("%s drifted from manifest: run go test ./deploy -update and review the diff", tt.file)
			}
			if string(tt.embedded) != string(onDisk) {
				t.Fatalf("embedded copy of %s is stale", tt.file)
			}
		})
	}
}

// sedValues are what the README's sed command substitutes.
func connectorValues() map[string]string {
	return map[string]string{
		manifest.PlaceholderRegion:         "eu-west-1",
		manifest.PlaceholderActivationID:   "5a2ee3b4-8f3c-4c5e-9a7e-0f1b2c3d4e5f",
		manifest.PlaceholderActivationCode: base64.StdEncoding.EncodeToString([]byte("AbCdEfGhIjKlMnOpQrStUvWx")),
		manifest.PlaceholderConnectorImage: manifest.DefaultConnectorImageRepository + ":" + manifest.DefaultVersion,
		manifest.PlaceholderSSMAgentImage:  manifest.DefaultSSMAgentImage,
		manifest.PlaceholderConsoleARN:     "arn:aws:iam::123456789012:role/Admin",
	}
}

func podIdentityValues() map[string]string {
	return map[string]string{
		manifest.PlaceholderClusterName:      "prod",
		manifest.PlaceholderRegion:           "eu-west-1",
		manifest.PlaceholderPodIdentityImage: manifest.DefaultPodIdentityImageRepository + ":" + manifest.DefaultVersion,
	}
}

func webhookValues() map[string]string {
	return map[string]string{
		manifest.PlaceholderWebhookImage: manifest.DefaultWebhookImageRepository + ":" + manifest.DefaultVersion,
	}
}

func TestEveryPlaceholderIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, values := range []map[string]string{connectorValues(), podIdentityValues(), webhookValues()} {
		for p := range values {
			if !strings.Contains(string(doc), p) {
				t.Errorf("placeholder %s is not documented in doc.go", p)
			}
		}
	}
	// And the substitution values above cover every placeholder in the files.
	if _, err := manifest.Substitute(ConnectorTemplate(), connectorValues()); err != nil {
		t.Error(err)
	}
	if _, err := manifest.Substitute(PodIdentityAgentTemplate(), podIdentityValues()); err != nil {
		t.Error(err)
	}
	if _, err := manifest.Substitute(WebhookTemplate(), webhookValues()); err != nil {
		t.Error(err)
	}
}

// readFile reads the file on disk (not the embedded copy, which is stale right after -update).
func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckedInYAMLPassesServerSideDryRun(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	// The connector YAML creates its own namespace; a dry run does not, so create it for real.
	_, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: manifest.DefaultNamespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_, err = env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: manifest.DefaultWebhookNamespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.CoreV1().Namespaces().Delete(context.Background(), manifest.DefaultNamespace, metav1.DeleteOptions{})
		_ = env.Client.CoreV1().Namespaces().Delete(context.Background(), manifest.DefaultWebhookNamespace, metav1.DeleteOptions{})
	})
	tests := []struct {
		name     string
		template []byte
		values   map[string]string
		kinds    int
	}{
		{"connector", readFile(t, "connector/eks-connector.yaml"), connectorValues(), 11},
		{"pod identity agent", readFile(t, "pod-identity-agent/eks-pod-identity-agent.yaml"), podIdentityValues(), 1},
		{"pod identity webhook", readFile(t, "pod-identity-webhook/pod-identity-webhook.yaml"), webhookValues(), 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := manifest.Substitute(tt.template, tt.values)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := manifest.Decode(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != tt.kinds {
				t.Fatalf("%d objects, want %d", len(objs), tt.kinds)
			}
			if err := manifest.Apply(ctx, env.Config, objs, manifest.ApplyOptions{DryRun: true}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The template without substitution must not be accepted by the API server: a forgotten sed
// must fail loudly, not install a connector for region "%AWS_REGION%".
func TestUnsubstitutedTemplateIsRefused(t *testing.T) {
	if _, err := manifest.Substitute(ConnectorTemplate(), nil); err == nil {
		t.Fatal("Substitute accepted a template with placeholders")
	}
	env := envtest.Shared(t)
	objs, err := manifest.Decode(ConnectorTemplate())
	if err != nil {
		t.Fatal(err)
	}
	var secret []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Secret" && o.GetName() == manifest.DefaultActivationSecretName { // the state Secrets have no data
			secret = append(secret, o)
		}
	}
	ns := env.Namespace(t)
	secret[0].SetNamespace(ns)
	if err := manifest.Apply(envtest.Context(t), env.Config, secret, manifest.ApplyOptions{DryRun: true}); err == nil {
		t.Fatal("the API server accepted a Secret whose data is the literal placeholder")
	}
}

func BenchmarkSubstituteAndDecodeConnector(b *testing.B) {
	tmpl, values := ConnectorTemplate(), connectorValues()
	b.ReportAllocs()
	for b.Loop() {
		out, err := manifest.Substitute(tmpl, values)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := manifest.Decode(out); err != nil {
			b.Fatal(err)
		}
	}
}

// TestREADMESedCommandsProduceTheSubstitutedYAML runs the sed commands of the README fragment
// literally, so the documented install path cannot rot.
func TestREADMESedCommandsProduceTheSubstitutedYAML(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("sed"); err != nil {
		t.Fatalf("sed is needed to check the documented command: %v", err)
	}
	code := "AbCdEfGhIjKlMnOpQrStUvWx"
	env := append(os.Environ(),
		"EKS_AWS_REGION=eu-west-1",
		"EKS_ACTIVATION_ID=5a2ee3b4-8f3c-4c5e-9a7e-0f1b2c3d4e5f",
		"EKS_ACTIVATION_CODE="+code,
		"EKS_CONNECTOR_IMAGE="+manifest.DefaultConnectorImageRepository+":"+manifest.DefaultVersion,
		"SSM_AGENT_IMAGE="+manifest.DefaultSSMAgentImage,
		"EKS_CONSOLE_ARN=arn:aws:iam::123456789012:role/Admin",
		"EKS_CLUSTER_NAME=prod",
		"EKS_POD_IDENTITY_AGENT_IMAGE="+manifest.DefaultPodIdentityImageRepository+":"+manifest.DefaultVersion,
		"POD_IDENTITY_WEBHOOK_IMAGE="+manifest.DefaultWebhookImageRepository+":"+manifest.DefaultVersion,
	)
	want := map[string]map[string]string{
		"deploy/connector/eks-connector.yaml":                   connectorValues(),
		"deploy/pod-identity-agent/eks-pod-identity-agent.yaml": podIdentityValues(),
		"deploy/pod-identity-webhook/pod-identity-webhook.yaml": webhookValues(),
	}
	lines := strings.Split(string(doc), "\n")
	found := 0
	for i, line := range lines {
		if !strings.HasPrefix(line, `sed "`) || i+1 >= len(lines) {
			continue
		}
		file := strings.Fields(lines[i+1])[0]
		values, ok := want[file]
		if !ok {
			t.Fatalf("README sed command for unknown file %q", file)
		}
		found++
		cmd := exec.Command("sh", "-c", strings.TrimSuffix(line, ` \`)+" "+file)
		cmd.Dir = ".."
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		tmpl, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(file)))
		if err != nil {
			t.Fatal(err)
		}
		expected, err := manifest.Substitute(tmpl, values)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != string(expected) {
			t.Errorf("the README's sed command for %s does not produce the substituted YAML", file)
		}
	}
	if found != len(want) {
		t.Fatalf("found %d sed commands in the README fragment, want %d", found, len(want))
	}
}

// TestTheEKSConnectorSedCommandStillWorks runs the sed command from the EKS Connector's own README
// (which knows nothing of %EKS_CONSOLE_ARN%) on our template: the result applies, and the one
// placeholder it leaves is a user name nobody has, so nobody can be impersonated until an ARN is
// granted.
func TestTheEKSConnectorSedCommandStillWorks(t *testing.T) {
	const seedSed = `sed "s~%AWS_REGION%~$EKS_AWS_REGION~g; s~%EKS_CONNECTOR_IMAGE%~$EKS_CONNECTOR_IMAGE~g; s~%SSM_AGENT_IMAGE%~$SSM_AGENT_IMAGE~g; s~%EKS_ACTIVATION_ID%~$EKS_ACTIVATION_ID~g; s~%EKS_ACTIVATION_CODE%~$(echo -n $EKS_ACTIVATION_CODE | base64)~g" connector/eks-connector.yaml`
	cmd := exec.Command("sh", "-c", seedSed)
	cmd.Env = append(os.Environ(),
		"EKS_AWS_REGION=eu-west-1",
		"EKS_ACTIVATION_ID=5a2ee3b4-8f3c-4c5e-9a7e-0f1b2c3d4e5f",
		"EKS_ACTIVATION_CODE=AbCdEfGhIjKlMnOpQrStUvWx",
		"EKS_CONNECTOR_IMAGE="+manifest.DefaultConnectorImageRepository+":"+manifest.DefaultVersion,
		"SSM_AGENT_IMAGE="+manifest.DefaultSSMAgentImage,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	_, err = manifest.Substitute(out, nil)
	if err == nil || !strings.Contains(err.Error(), manifest.PlaceholderConsoleARN) || strings.Count(err.Error(), "%") != 2 {
		t.Fatalf("leftover placeholders: %v, want only %s", err, manifest.PlaceholderConsoleARN)
	}
	objs, err := manifest.Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	for _, o := range objs {
		if o.GetNamespace() != "" {
			o.SetNamespace(ns)
		}
	}
	if err := manifest.Apply(ctx, env.Config, objs, manifest.ApplyOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
}

// TestConnectorYAMLIsTheDocumentedRBACAndProbesOnThePodIP checks two promises of the checked-in
// connector YAML. Its impersonation ClusterRole has exactly the rules of the
// connector-additional-binding.yaml AWS documents (seed 001, the AWS Containers blog post "Connect
// any Kubernetes cluster to Amazon EKS", copied in impersonation/rbac/testdata): a user swapping it in
// needs no new RBAC, and nothing more is granted (no userextras). And the proxy's probes listen on
// the pod IP, not on every interface.
func TestConnectorYAMLIsTheDocumentedRBACAndProbesOnThePodIP(t *testing.T) {
	seed, err := os.ReadFile(filepath.Join("..", "impersonation", "rbac", "testdata", "connector-additional-binding.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	documented, err := manifest.Decode([]byte(strings.ReplaceAll(string(seed), "arn:aws:iam::1234567890:user/Alice", manifest.PlaceholderConsoleARN)))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Decode(readFile(t, "connector/eks-connector.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rules := func(objs []*unstructured.Unstructured) string {
		for _, o := range objs {
			if o.GetKind() == "ClusterRole" {
				r, _, _ := unstructured.NestedSlice(o.Object, "rules")
				b, _ := json.Marshal(r)
				return string(b)
			}
		}
		t.Fatal("no ClusterRole")
		return ""
	}
	if got, want := rules(objs), rules(documented); got != want {
		t.Errorf("impersonation rules\n got: %s\nwant: %s (the documented ones)", got, want)
	}
	for _, o := range objs {
		if o.GetKind() != "StatefulSet" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			c := c.(map[string]any)
			if c["name"] != "connector-proxy" {
				continue
			}
			args, _, _ := unstructured.NestedStringSlice(c, "args")
			if !slices.Contains(args, "--health-addr=[$(POD_IP)]:8081") {
				t.Errorf("proxy args %q: want the probes on [$(POD_IP)]:8081", args)
			}
			return
		}
	}
	t.Fatal("no connector-proxy container")
}
