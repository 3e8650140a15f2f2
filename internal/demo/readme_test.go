package demo_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ekslink/ekslink/internal/demo"
)

// readmeSnippetHeader declares the free variables the README's Go block uses, so the block compiles
// as the body of one function.
const readmeSnippetHeader = `package readmecheck

import (
	"context"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/eksauth"
	"github.com/ekslink/ekslink/eksauth/awsauth"
	"github.com/ekslink/ekslink/podidentity"
	"github.com/ekslink/ekslink/impersonation"
	"github.com/ekslink/ekslink/impersonation/rbac"
	"github.com/ekslink/ekslink/oidc"
	"github.com/ekslink/ekslink/registration"
	"github.com/ekslink/ekslink/statestore"
)

var _ = http.Serve

func snippet(ctx context.Context, restCfg *rest.Config, registry prometheus.Registerer, log logr.Logger, listener net.Listener,
	clientset kubernetes.Interface, id, code, token, ciRole, aliceARN string, awsCfg aws.Config,
	cluster *eksauth.Cluster, awsAuthCfg *awsauth.Config) error {
`

// TestREADMEGoSnippetCompiles compiles the README's Go block against the packages, so a renamed
// function, a changed signature or a redeclared variable in the README fails the tests. Variables
// the snippet declares only to show a result ("declared and not used") are tolerated.
func TestREADMEGoSnippetCompiles(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) != 1 {
		t.Fatalf("README.md has %d Go blocks, this test checks exactly one", len(blocks))
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "snippet.go")
	if err := os.WriteFile(src, []byte(readmeSnippetHeader+string(blocks[0][1])+"\treturn nil\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(root, "internal", "readmecheck", "snippet.go"): src}})
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-overlay", overlayFile, "-gcflags=-e", "-o", os.DevNull, "./internal/readmecheck")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err == nil {
		return
	}
	var problems []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(line, "#") || strings.Contains(line, "declared and not used") {
			continue
		}
		problems = append(problems, line)
	}
	if len(problems) > 0 || !strings.Contains(string(out), "declared and not used") {
		t.Fatalf("the README's Go block does not compile:\n%s", out)
	}
}

// TestREADMEListsEveryDemoStep: the README's "What make demo shows" has one numbered item per
// step Run performs, so a new step cannot go undocumented.
func TestREADMEListsEveryDemoStep(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## What `make demo` shows")
	if !ok {
		t.Fatal("README.md has no \"What `make demo` shows\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	items := regexp.MustCompile(`(?m)^(\d+)\. \*\*`).FindAllStringSubmatch(section, -1)
	if len(items) != demo.Steps {
		t.Fatalf("the README lists %d demo steps, Run performs %d", len(items), demo.Steps)
	}
	for i, m := range items {
		if m[1] != strconv.Itoa(i+1) {
			t.Errorf("README demo item %d is numbered %s", i+1, m[1])
		}
	}
}
