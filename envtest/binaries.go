package envtest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The variables FindBinaries reads, in the order it reads them.
const (
	// EnvTestbinDir is ekslink's own variable: a directory with kube-apiserver and etcd. It wins
	// over KUBEBUILDER_ASSETS, so a project can pin its binaries while a shell keeps
	// KUBEBUILDER_ASSETS set for other projects.
	EnvTestbinDir = "EKSLINK_TESTBIN_DIR"
	// EnvKubebuilderAssets is controller-runtime's variable (what `setup-envtest use -p path`
	// prints): a directory with kube-apiserver and etcd.
	EnvKubebuilderAssets = "KUBEBUILDER_ASSETS"
)

// KubernetesVersion and EtcdVersion are the releases hack/testbin.sh builds into the cache
// (pinned in hack/testbin.env; TestPinnedVersionsMatchTestbinEnv keeps the two equal). The cache
// directory is named after them.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.7.0"
)

// Where a Binaries' directory came from (Binaries.Source, BinariesNotFoundError.Source).
const (
	SourceField             = "Environment.BinaryAssetsDirectory"
	SourceTestbinDir        = EnvTestbinDir
	SourceKubebuilderAssets = EnvKubebuilderAssets
	SourceCache             = "cache"
)

// Binaries are the paths of the control-plane executables.
type Binaries struct {
	// Dir is the directory holding them (ekslink's node tests find the kubelet there too).
	Dir string
	// KubeAPIServer is the kube-apiserver executable.
	KubeAPIServer string
	// Etcd is the etcd executable.
	Etcd string
	// Source says where Dir came from: SourceField, SourceTestbinDir, SourceKubebuilderAssets or
	// SourceCache.
	Source string
}

// BinariesNotFoundError says that kube-apiserver or etcd is not where the lookup led, and how to
// provide them.
type BinariesNotFoundError struct {
	// Source is where Dir came from (see Binaries.Source).
	Source string
	// Dir is the directory that lacks an executable ("" when no cache directory could be named).
	Dir string
	// Missing says what is wrong, one entry per executable ("kube-apiserver: no such file").
	Missing []string
	// Cache is the cache directory of hack/testbin.sh ("" when there is no home directory).
	Cache string
}

// Error says what is missing where, and the three ways to provide the binaries.
func (e *BinariesNotFoundError) Error() string {
	var b strings.Builder
	b.WriteString("envtest: kube-apiserver and etcd not found: ")
	switch e.Source {
	case SourceCache:
		fmt.Fprintf(&b, "neither %s nor %s is set, and the cache of hack/testbin.sh (%s) lacks %s; ",
			EnvTestbinDir, EnvKubebuilderAssets, e.Dir, strings.Join(e.Missing, ", "))
		fmt.Fprintf(&b, "run \"make testbin\" in the ekslink repository, or set %s (for example to what controller-runtime's "+
			"`setup-envtest use -p path` prints) or %s to a directory with kube-apiserver and etcd", EnvKubebuilderAssets, EnvTestbinDir)
	case SourceField:
		fmt.Fprintf(&b, "%s %s lacks %s; point it at a directory with kube-apiserver and etcd, or leave it empty to use %s, %s "+
			"or the cache \"make testbin\" builds (%s)", SourceField, e.Dir, strings.Join(e.Missing, ", "), EnvTestbinDir, EnvKubebuilderAssets, e.Cache)
	default:
		other := EnvKubebuilderAssets
		if e.Source == EnvKubebuilderAssets {
			other = EnvTestbinDir
		}
		fmt.Fprintf(&b, "%s=%s lacks %s; point it at a directory with kube-apiserver and etcd, or unset it to use %s "+
			"or the cache \"make testbin\" builds (%s)", e.Source, e.Dir, strings.Join(e.Missing, ", "), other, e.Cache)
	}
	return b.String()
}

// FindBinaries locates kube-apiserver and etcd from the environment: the directory in
// $EKSLINK_TESTBIN_DIR if set, else the one in $KUBEBUILDER_ASSETS if set, else the cache directory
// hack/testbin.sh builds into ($XDG_CACHE_HOME or ~/.cache, then
// ekslink/testbin/<KubernetesVersion>-<EtcdVersion>). A variable that is set but names a directory
// without the executables is an error, not a reason to look further. The error is a
// *BinariesNotFoundError naming all three places.
func FindBinaries() (Binaries, error) {
	if dir := os.Getenv(EnvTestbinDir); dir != "" {
		return binariesIn(dir, SourceTestbinDir)
	}
	if dir := os.Getenv(EnvKubebuilderAssets); dir != "" {
		return binariesIn(dir, SourceKubebuilderAssets)
	}
	cache := cacheDir()
	if cache == "" {
		return Binaries{}, &BinariesNotFoundError{Source: SourceCache, Missing: []string{"kube-apiserver, etcd: no home directory for the cache"}}
	}
	return binariesIn(cache, SourceCache)
}

// cacheDir is where hack/testbin.sh builds the pinned versions ("" without a home directory).
func cacheDir() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "ekslink", "testbin", KubernetesVersion+"-"+EtcdVersion)
}

// binariesIn checks that dir holds executable kube-apiserver and etcd files.
func binariesIn(dir, source string) (Binaries, error) {
	b := Binaries{Dir: dir, KubeAPIServer: filepath.Join(dir, "kube-apiserver"), Etcd: filepath.Join(dir, "etcd"), Source: source}
	var missing []string
	for _, p := range []string{b.KubeAPIServer, b.Etcd} {
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, filepath.Base(p)+": no such file")
		case err != nil:
			missing = append(missing, filepath.Base(p)+": "+err.Error())
		case fi.IsDir():
			missing = append(missing, filepath.Base(p)+": a directory")
		case fi.Mode().Perm()&0o111 == 0:
			missing = append(missing, filepath.Base(p)+": not executable")
		}
	}
	if len(missing) > 0 {
		return b, &BinariesNotFoundError{Source: source, Dir: dir, Missing: missing, Cache: cacheDir()}
	}
	return b, nil
}
