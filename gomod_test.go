package ekslink_test

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// The SDK module's go.mod must not require what only the charts module (helm and the
// apiextensions-apiserver it pulls in) or the interop tests (go-oidc; aws-iam-authenticator, which
// brings k8s.io/component-base, OpenTelemetry, logrus, afero and more) need: every module the SDK
// requires is listed by every program that imports any ekslink package. Those live in
// charts/go.mod and test/interop/go.mod.
func TestSDKModuleDoesNotRequireToolingOnlyModules(t *testing.T) {
	out, err := exec.Command("go", "mod", "edit", "-json").Output()
	if err != nil {
		t.Fatalf("go mod edit -json: %v", err)
	}
	var mod struct {
		Module  struct{ Path string }
		Require []struct{ Path string }
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatalf("go mod edit -json: %v", err)
	}
	if mod.Module.Path != "github.com/ekslink/ekslink" {
		t.Fatalf("go.mod is %s, want the SDK's", mod.Module.Path)
	}
	banned := map[string]string{
		"helm.sh/helm/v3":                   "charts/go.mod",
		"k8s.io/apiextensions-apiserver":    "charts/go.mod (helm's)",
		"github.com/coreos/go-oidc/v3":      "test/interop/go.mod",
		"sigs.k8s.io/aws-iam-authenticator": "test/interop/go.mod",
	}
	for _, r := range mod.Require {
		if where, ok := banned[r.Path]; ok {
			t.Errorf("go.mod requires %s; it belongs in %s: move the code importing it there and run go mod tidy", r.Path, where)
		}
	}
}
