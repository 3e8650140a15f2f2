package envtest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Binaries are the paths of the control-plane executables.
type Binaries struct {
	Dir           string
	KubeAPIServer string
	Etcd          string
}

// FindBinaries locates kube-apiserver and etcd: $EKSLINK_TESTBIN_DIR if set, otherwise the cache
// directory hack/testbin.sh builds into for the versions pinned in hack/testbin.env.
func FindBinaries() (Binaries, error) {
	dir := os.Getenv("EKSLINK_TESTBIN_DIR")
	if dir == "" {
		versions, err := pinnedVersions()
		if err != nil {
			return Binaries{}, err
		}
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return Binaries{}, fmt.Errorf("envtest: no home directory for the test binary cache: %w", err)
			}
			cache = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(cache, "ekslink", "testbin", versions["KUBERNETES_VERSION"]+"-"+versions["ETCD_VERSION"])
	}
	b := Binaries{Dir: dir, KubeAPIServer: filepath.Join(dir, "kube-apiserver"), Etcd: filepath.Join(dir, "etcd")}
	for _, p := range []string{b.KubeAPIServer, b.Etcd} {
		if _, err := os.Stat(p); err != nil {
			return b, fmt.Errorf("envtest: %s is missing: run \"make testbin\" (or set EKSLINK_TESTBIN_DIR): %w", p, err)
		}
	}
	return b, nil
}

// requireBinaries fails the test under CI and skips it elsewhere when the binaries are missing.
func requireBinaries(t testing.TB) Binaries {
	t.Helper()
	b, err := FindBinaries()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set, so this is a failure, not a skip)", err)
		}
		t.Skipf("skipping control-plane test: %v", err)
	}
	return b
}

// pinnedVersions reads hack/testbin.env, the one place the control-plane versions are pinned.
func pinnedVersions() (map[string]string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return nil, fmt.Errorf("envtest: cannot locate the source tree")
	}
	path := filepath.Join(filepath.Dir(self), "..", "hack", "testbin.env")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("envtest: reading pinned versions: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if out["KUBERNETES_VERSION"] == "" || out["ETCD_VERSION"] == "" {
		return nil, fmt.Errorf("envtest: %s must set KUBERNETES_VERSION and ETCD_VERSION", path)
	}
	return out, sc.Err()
}
