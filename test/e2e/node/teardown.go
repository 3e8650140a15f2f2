package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// Stop tears the node down: it stops the kubelet, stops and removes every pod sandbox through the
// CRI (their containers are killed, their network released), stops containerd and the
// controllers and the service proxy, kills any process still in the node's cgroups or naming its
// directory, unmounts what is mounted under the directory, deletes the bridge and the links
// workloads created on the host (PodIdentityAgentLink), removes the node's cgroups and the
// directory, then checks that none of it is left. It is safe to call more than once; every call
// returns the first call's result. The control plane (Env) is stopped by its own t.Cleanup.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() { n.stopErr = n.stop() })
	return n.stopErr
}

func (n *Node) stop() error {
	var errs []error
	n.kubelet.stop(15 * time.Second)
	if n.containerd != nil && !n.containerd.proc.exited() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := n.containerd.removeAllSandboxes(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
		n.containerd.proc.stop(10 * time.Second)
	}
	n.kcm.stop(5 * time.Second)
	n.scheduler.stop(5 * time.Second)
	n.svcProxy.stop()
	if err := n.killStrays(); err != nil {
		errs = append(errs, err)
	}
	if err := unmountUnder(n.Dir); err != nil {
		errs = append(errs, err)
	}
	if n.net != nil {
		if err := n.net.remove(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeHostLinks(); err != nil {
		errs = append(errs, err)
	}
	if err := n.removeCgroups(); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(n.Dir); err != nil {
		errs = append(errs, fmt.Errorf("removing %s: %w", n.Dir, err))
	}
	for _, p := range n.newHostPaths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s, which the node created: %w", p, err))
		}
	}
	if left := n.Leftovers(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("left behind: %s", strings.Join(left, "; ")))
	}
	return errors.Join(errs...)
}

// Leftovers lists what of the node still exists on the machine: mounts under its directory, the
// directory, processes naming it or in its cgroups, the bridge (with the Service address on it),
// the links workloads create on the host (PodIdentityAgentLink, with the agent's addresses), its
// cgroups. Empty after Stop.
func (n *Node) Leftovers() []string {
	var left []string
	if mounts, err := mountsUnder(n.Dir); err != nil {
		left = append(left, "reading mountinfo: "+err.Error())
	} else {
		for _, m := range mounts {
			left = append(left, "mount "+m)
		}
	}
	if _, err := os.Lstat(n.Dir); err == nil {
		left = append(left, "directory "+n.Dir)
	}
	for _, p := range n.newHostPaths {
		if _, err := os.Lstat(p); err == nil {
			left = append(left, "host path "+p)
		}
	}
	for _, pid := range n.processes() {
		left = append(left, fmt.Sprintf("process %d (%s)", pid, cmdline(pid)))
	}
	if n.net != nil {
		if _, err := netlink.LinkByName(n.net.bridge); err == nil {
			left = append(left, "link "+n.net.bridge)
		}
	}
	for _, name := range hostLinks {
		if _, err := netlink.LinkByName(name); err == nil {
			left = append(left, "link "+name)
		}
	}
	if n.cgroupRoot != "" {
		if mounts, err := cgroupMounts(); err == nil {
			for _, m := range mounts {
				if _, err := os.Stat(filepath.Join(m, n.cgroupRoot)); err == nil {
					left = append(left, "cgroup "+filepath.Join(m, n.cgroupRoot))
				}
			}
		}
	}
	return left
}

// processes returns the PIDs of processes that name the node directory on their command line
// (containerd's shims name its socket) or run in the node's cgroups (the pods' processes).
func (n *Node) processes() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if strings.Contains(cmdline(pid)+" ", n.Dir+"/") || strings.Contains(cmdline(pid)+" ", n.Dir+" ") {
			pids = append(pids, pid)
			continue
		}
		if n.cgroupRoot != "" {
			if cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil &&
				strings.Contains(string(cg), ":"+n.cgroupRoot+"/") {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func cmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}

// killStrays SIGKILLs what a clean stop left running, and waits for it to go.
func (n *Node) killStrays() error {
	pids := n.processes()
	if len(pids) == 0 {
		return nil
	}
	var names []string
	for _, pid := range pids {
		names = append(names, fmt.Sprintf("%d (%s)", pid, cmdline(pid)))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(n.processes()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("killed processes a clean stop should have ended: %s", strings.Join(names, ", "))
}

// mountsUnder returns the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// unmountUnder unmounts everything mounted below dir (the kubelet's bind mount of its root
// directory and pod volumes, containerd's snapshots and shm), deepest first; a mount still busy
// is detached.
func unmountUnder(dir string) error {
	var errs []error
	for pass := 0; pass < 5; pass++ {
		mounts, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			return nil
		}
		errs = nil
		for _, m := range mounts {
			if err := syscall.Unmount(m, 0); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
					errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// removeCgroups removes the node's cgroup trees, leaves first (cgroup directories go with rmdir).
func (n *Node) removeCgroups() error {
	if n.cgroupRoot == "" {
		return nil
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		root := filepath.Join(m, n.cgroupRoot)
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			var err error
			for try := 0; try < 50; try++ { // a cgroup whose last task just exited can be busy briefly
				if err = syscall.Rmdir(dirs[i]); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// hostPaths are what the kubelet, containerd and the CNI plugins create outside the node's
// directory whatever their configuration says (the device-plugin socket path, runtime and CNI
// cache directories, named network namespaces), deepest first. Stop removes those that did not
// exist before the node started (directories only when empty).
var hostPaths = []string{
	"/var/lib/kubelet/device-plugins/kubelet.sock",
	"/var/lib/kubelet/device-plugins",
	"/var/lib/kubelet",
	"/var/lib/cni/results",
	"/var/lib/cni",
	"/run/containerd/s",
	"/run/containerd",
	"/run/netns",
}

// absentHostPaths returns the hostPaths that do not exist now.
func absentHostPaths() []string {
	var out []string
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			out = append(out, p)
		}
	}
	return out
}
