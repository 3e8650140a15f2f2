package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTheSDKModuleDoesNotNeedTheImageTooling: go-containerregistry and the CA bundle are this
// module's alone (issue 16: heavy tooling stays out of the SDK's go.mod).
func TestTheSDKModuleDoesNotNeedTheImageTooling(t *testing.T) {
	root := repoRoot(t)
	for _, file := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, module := range []string{"github.com/google/go-containerregistry", "golang.org/x/crypto/x509roots/fallback"} {
			if strings.Contains(string(data), module+" ") {
				t.Errorf("the SDK's %s lists %s", file, module)
			}
		}
	}
}
