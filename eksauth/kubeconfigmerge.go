package eksauth

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ekslink/ekslink/internal/atomicfile"
)

// ErrKubeconfigLocked is wrapped by the error MergeKubeconfig returns when the kubeconfig's lock
// file stays in place for the whole LockTimeout.
var ErrKubeconfigLocked = errors.New("eksauth: the kubeconfig is locked")

// MergeOptions tune MergeKubeconfig.
type MergeOptions struct {
	// Path is the kubeconfig to update. Empty picks it as "aws eks update-kubeconfig" does: of the
	// files in $KUBECONFIG (Getenv), the first that already has the cluster, else the first one;
	// ~/.kube/config when KUBECONFIG is unset or empty.
	Path string
	// Alias names the context (default: the cluster ARN). The cluster and user entries are named
	// after the cluster ARN, as the AWS CLI names them.
	Alias string
	// Kubeconfig shapes the exec stanza of the user (its Context field is ignored).
	Kubeconfig KubeconfigOptions
	// LockTimeout is how long to wait for another writer's lock (default 10s).
	LockTimeout time.Duration
	// Getenv reads KUBECONFIG and HOME (default os.Getenv).
	Getenv func(string) string
}

// MergeResult says what MergeKubeconfig did.
type MergeResult struct {
	// Path is the file updated; Context the context set as current.
	Path, Context string
	// Added is true when the context did not exist before.
	Added bool
	// Changed is false when the file already held exactly these entries and current-context:
	// nothing was written.
	Changed bool
	// Backup is the copy of the previous file (Path + ".bak"), when there was one.
	Backup string
}

// KubeconfigPath picks the file MergeKubeconfig updates when MergeOptions.Path is empty.
func KubeconfigPath(getenv func(string) string, clusterEntry string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var paths []string
	for _, p := range filepath.SplitList(getenv(clientcmd.RecommendedConfigPathEnvVar)) {
		if strings.TrimSpace(p) != "" {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("eksauth: neither KUBECONFIG nor HOME is set: name the kubeconfig to write")
		}
		return filepath.Join(home, clientcmd.RecommendedHomeDir, clientcmd.RecommendedFileName), nil
	}
	for _, p := range paths {
		if kc, err := clientcmd.LoadFromFile(p); err == nil && kc.Clusters[clusterEntry] != nil {
			return p, nil
		}
	}
	return paths[0], nil
}

// lockKubeconfig takes the lock client-go's clientcmd.ModifyConfig (kubectl config) takes: the
// file path+".lock" created exclusively, removed when done. It waits up to timeout for another
// holder.
func lockKubeconfig(path string, timeout time.Duration) (unlock func(), err error) {
	lock := path + ".lock"
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { _ = os.Remove(lock) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("eksauth: locking %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s exists (kubectl config or another ekslink is writing it); remove it if no such process runs", ErrKubeconfigLocked, lock)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// MergeKubeconfig adds or updates the cluster in a kubeconfig as "aws eks update-kubeconfig" does:
// a cluster and a user entry named after the cluster ARN, a context named Alias (default the ARN)
// joining them, current-context set to it, every other cluster, user, context, preference and
// extension kept. The file is locked the way kubectl locks it, read, and if anything changes
// copied to Path+".bak" and replaced atomically with mode 0600; a file that cannot be parsed is
// left alone and reported. Running it again with the same inputs writes nothing.
func MergeKubeconfig(c *Cluster, opts MergeOptions) (*MergeResult, error) {
	name := c.ARN
	if name == "" {
		name = c.Name
	}
	cluster, user, err := kubeconfigEntries(c, opts.Kubeconfig)
	if err != nil {
		return nil, err
	}
	path := opts.Path
	if path == "" {
		if path, err = KubeconfigPath(opts.Getenv, name); err != nil {
			return nil, err
		}
	}
	ctxName := opts.Alias
	if ctxName == "" {
		ctxName = name
	}
	res := &MergeResult{Path: path, Context: ctxName}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("eksauth: creating the kubeconfig directory: %w", err)
	}
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	unlock, err := lockKubeconfig(path, timeout)
	if err != nil {
		return nil, err
	}
	defer unlock()

	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("eksauth: reading %s: %w", path, err)
	}
	kc := clientcmdapi.NewConfig()
	if len(old) > 0 {
		if kc, err = clientcmd.Load(old); err != nil {
			return nil, fmt.Errorf("eksauth: %s is not a kubeconfig client-go can read (%v); fix or move it, nothing was written", path, err)
		}
	}
	before, err := clientcmd.Write(*kc)
	if err != nil {
		return nil, fmt.Errorf("eksauth: rendering %s: %w", path, err)
	}
	context := &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	if prev := kc.Contexts[ctxName]; prev != nil {
		// Keep what the user set on the context (namespace, extensions).
		merged := *prev
		merged.Cluster, merged.AuthInfo = name, name
		context = &merged
	}
	res.Added = kc.Contexts[ctxName] == nil
	kc.Clusters[name], kc.AuthInfos[name], kc.Contexts[ctxName] = cluster, user, context
	kc.CurrentContext = ctxName
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return nil, fmt.Errorf("eksauth: rendering %s: %w", path, err)
	}
	if len(old) > 0 && bytes.Equal(before, data) {
		return res, nil // the same entries and current-context: nothing to write
	}
	if len(old) > 0 {
		res.Backup = path + ".bak"
		if err := atomicfile.Write(res.Backup, old, 0o600); err != nil {
			return nil, fmt.Errorf("eksauth: backing up %s: %w", path, err)
		}
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("eksauth: writing %s: %w", path, err)
	}
	res.Changed = true
	return res, nil
}
