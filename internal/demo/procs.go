package demo

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// binaries are the reference binaries the demo runs as processes.
var binaries = map[string]string{
	"eks-connector":        "./cmd/eks-connector",
	"pod-identity-agent":   "./cmd/pod-identity-agent",
	"pod-identity-webhook": "./cmd/pod-identity-webhook",
	// workload stands in for an application in a pod: the AWS SDK's default configuration.
	"workload": "./internal/demo/workload",
}

// BuildBinaries builds the reference binaries into dir with the go command, from the module root
// (found from the working directory upwards).
func BuildBinaries(ctx context.Context, dir string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-buildvcs=auto", "-o", dir + string(os.PathSeparator)}
	for _, name := range []string{"eks-connector", "pod-identity-agent", "pod-identity-webhook", "workload"} {
		args = append(args, binaries[name])
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building the reference binaries: %v\n%s", err, out.String())
	}
	return nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/ekslink/ekslink\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("demo: run from inside the ekslink module")
		}
		dir = parent
	}
}

// process is a child process with its output kept in a file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
	once sync.Once
}

// run runs a binary to completion and returns its combined output.
func run(ctx context.Context, bin string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// startProcess starts a long-running binary; its output goes to logDir/<name>.log.
func startProcess(name, bin, logDir string, env []string, args ...string) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group (a terminal Ctrl-C reaches only the demo, which stops these in order);
	// killed if the demo itself dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits for a graceful exit (SIGKILL after 10 s).
func (p *process) stop() error {
	var err error
	p.once.Do(func() {
		if p.exited() {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			if p.err != nil {
				err = fmt.Errorf("%s did not exit cleanly on SIGTERM: %v", p.name, p.err)
			}
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			err = fmt.Errorf("%s ignored SIGTERM for 10s", p.name)
		}
	})
	return err
}

// kill ends the process at once (a crash).
func (p *process) kill() {
	p.once.Do(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
		}
		<-p.done
	})
}

// logs returns the process's output so far.
func (p *process) logs() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// waitFor polls check until it returns nil, the process dies, ctx ends (Ctrl-C) or the timeout
// passes.
func waitFor(ctx context.Context, p *process, timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited while waiting for %s: %v\n%s", p.name, what, p.err, p.logs())
		}
		if last = check(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-tick.C:
		}
	}
	if p != nil {
		return fmt.Errorf("timed out after %s waiting for %s: %v\n%s", timeout, what, last, p.logs())
	}
	return fmt.Errorf("timed out after %s waiting for %s: %v", timeout, what, last)
}

// httpOK checks that url answers 200.
func httpOK(client *http.Client, url string) func() error {
	return func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}

// freeAddr returns a free loopback TCP address.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
