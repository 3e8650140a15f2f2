package envtest

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBinaries makes a directory with executable kube-apiserver and etcd files (FindBinaries only
// looks; nothing runs them).
func fakeBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestFindBinariesLookupOrder: $EKSLINK_TESTBIN_DIR, then controller-runtime's $KUBEBUILDER_ASSETS,
// then the cache of hack/testbin.sh under $XDG_CACHE_HOME; Environment.BinaryAssetsDirectory wins
// over all of them.
func TestFindBinariesLookupOrder(t *testing.T) {
	ekslinkDir, kubebuilderDir, xdg := fakeBinaries(t), fakeBinaries(t), t.TempDir()
	cache := filepath.Join(xdg, "ekslink", "testbin", KubernetesVersion+"-"+EtcdVersion)
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fakeBinaries(t), cache); err != nil {
		t.Fatal(err)
	}
	field := fakeBinaries(t)
	for _, tt := range []struct {
		name                 string
		ekslink, kubebuilder string
		field                string
		wantDir, wantSource  string
	}{
		{"both variables: ekslink's wins", ekslinkDir, kubebuilderDir, "", ekslinkDir, SourceTestbinDir},
		{"KUBEBUILDER_ASSETS alone", "", kubebuilderDir, "", kubebuilderDir, SourceKubebuilderAssets},
		{"EKSLINK_TESTBIN_DIR alone", ekslinkDir, "", "", ekslinkDir, SourceTestbinDir},
		{"neither: the cache", "", "", "", cache, SourceCache},
		{"the field over both variables", ekslinkDir, kubebuilderDir, field, field, SourceField},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvTestbinDir, tt.ekslink)
			t.Setenv(EnvKubebuilderAssets, tt.kubebuilder)
			t.Setenv("XDG_CACHE_HOME", xdg)
			b, err := (&Environment{BinaryAssetsDirectory: tt.field}).binaries()
			if err != nil {
				t.Fatal(err)
			}
			if b.Dir != tt.wantDir || b.Source != tt.wantSource ||
				b.KubeAPIServer != filepath.Join(tt.wantDir, "kube-apiserver") || b.Etcd != filepath.Join(tt.wantDir, "etcd") {
				t.Fatalf("found %+v, want %s from %s", b, tt.wantDir, tt.wantSource)
			}
		})
	}
}

// A variable that is set but wrong is an error naming it (not a silent fall-through to the next
// place), and every error names all three places and says how to fill them.
func TestMissingBinariesErrorNamesEveryPlace(t *testing.T) {
	xdg := t.TempDir()
	cache := filepath.Join(xdg, "ekslink", "testbin", KubernetesVersion+"-"+EtcdVersion)
	good, empty := fakeBinaries(t), t.TempDir()
	notExec := fakeBinaries(t)
	if err := os.Chmod(filepath.Join(notExec, "etcd"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name                 string
		ekslink, kubebuilder string
		field                string
		source, dir          string
		missing              []string
	}{
		{"nothing set, empty cache", "", "", "", SourceCache, cache, []string{"kube-apiserver: no such file", "etcd: no such file"}},
		{"EKSLINK_TESTBIN_DIR empty, KUBEBUILDER_ASSETS good", empty, good, "", SourceTestbinDir, empty, []string{"kube-apiserver: no such file", "etcd: no such file"}},
		{"KUBEBUILDER_ASSETS without an executable etcd", "", notExec, "", SourceKubebuilderAssets, notExec, []string{"etcd: not executable"}},
		{"the field names an empty directory", good, good, empty, SourceField, empty, []string{"kube-apiserver: no such file", "etcd: no such file"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvTestbinDir, tt.ekslink)
			t.Setenv(EnvKubebuilderAssets, tt.kubebuilder)
			t.Setenv("XDG_CACHE_HOME", xdg)
			env := &Environment{BinaryAssetsDirectory: tt.field}
			_, err := env.Start() // fails before starting anything
			var nf *BinariesNotFoundError
			if !errors.As(err, &nf) {
				t.Fatalf("Start: %v, want a *BinariesNotFoundError", err)
			}
			if nf.Source != tt.source || nf.Dir != tt.dir || strings.Join(nf.Missing, "|") != strings.Join(tt.missing, "|") {
				t.Fatalf("error %+v, want source %s, dir %s, missing %v", nf, tt.source, tt.dir, tt.missing)
			}
			msg := err.Error()
			for _, want := range []string{EnvTestbinDir, EnvKubebuilderAssets, "make testbin", cache, tt.dir} {
				if !strings.Contains(msg, want) {
					t.Errorf("the error does not name %q:\n%s", want, msg)
				}
			}
			if err := env.Stop(); err != nil {
				t.Fatalf("Stop after a failed Start: %v", err)
			}
			if _, err := env.Start(); err == nil || errors.As(err, &nf) || !strings.Contains(err.Error(), "Start called twice, or after Stop") {
				t.Fatalf("Start after Stop: %v, want a refusal", err)
			}
		})
	}
}

// The cache directory is named after KubernetesVersion and EtcdVersion; hack/testbin.sh names it
// after hack/testbin.env. They must agree, or the tests would look where nothing was built.
func TestPinnedVersionsMatchTestbinEnv(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "hack", "testbin.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			got[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if got["KUBERNETES_VERSION"] != KubernetesVersion || got["ETCD_VERSION"] != EtcdVersion {
		t.Fatalf("hack/testbin.env pins %s and %s; envtest.KubernetesVersion and EtcdVersion are %s and %s: change them together",
			got["KUBERNETES_VERSION"], got["ETCD_VERSION"], KubernetesVersion, EtcdVersion)
	}
}
