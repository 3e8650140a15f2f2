package docscheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// binaryPackages are the reference binaries and where they are built from (the output name is the
// package directory's base name).
var binaryPackages = []string{"./cmd/ekslink", "./cmd/pod-identity-agent", "./cmd/pod-identity-webhook", "./cmd/eks-connector"}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// buildBinaries builds every reference binary once per test process, with the VCS stamp (the
// environment may default to -buildvcs=false).
func buildBinaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "ekslink-docscheck-")
		if buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-buildvcs=auto", "-o", binDir + string(os.PathSeparator)}, binaryPackages...)...)
		cmd.Dir = moduleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// invocation is one command line found in a text: the binary, the words after it and the flags it
// names.
type invocation struct {
	where  string // file:line or help text
	binary string
	words  []string
	flags  []string
	text   string
}

var (
	// A binary's name, optionally as the package path "go run" takes, at the start of a command.
	commandStart = regexp.MustCompile(`(?:^|[\s"'(\x60$])(?:\./cmd/)?(ekslink|pod-identity-agent|pod-identity-webhook|eks-connector)(?:\s+|$)`)
	wordRE       = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	flagRE       = regexp.MustCompile(`^(--[a-z0-9][a-z0-9-]*|-[a-zA-Z])(?:=.*)?$`)
	fenceRE      = regexp.MustCompile("(?s)```[a-z]*\n(.*?)```")
	codeSpanRE   = regexp.MustCompile("`([^`\n]+)`")
)

// parseCommands finds the command lines in text. A command runs from the binary's name to the end
// of its line (continued by a trailing backslash), a pipe, ";", "&&", a comment or a closing quote.
// With strict false (plain text, help texts), "eks-connector" and "pod-identity-webhook", which are
// also ordinary words there (the chart and namespace eks-connector, the upstream webhook and its ConfigMap), are not looked for, and shell comments are not cut.
func parseCommands(where, text string, strict bool) []invocation {
	text = strings.ReplaceAll(text, "\\\n", " ")
	var out []invocation
	for n, line := range strings.Split(text, "\n") {
		at := fmt.Sprintf("%s:%d", where, n+1)
		if loc := shellComment.FindStringIndex(line); loc != nil && strict {
			// A shell comment is prose: "eks-connector" there is a word, not the binary.
			out = append(out, parseLine(at, line[loc[1]:], false)...)
			line = line[:loc[0]]
		}
		out = append(out, parseLine(at, line, strict)...)
	}
	return out
}

var shellComment = regexp.MustCompile(`(^|\s)#`)

// commandPrefix is what may stand before a binary's name at the start of a command: nothing, a
// prompt, a pipe or separator, an opening quote or parenthesis, "go run ./cmd/", or environment
// assignments.
var commandPrefix = regexp.MustCompile(`(?:^|[$|;&("'\x60]|go run|exec|\b[A-Z_][A-Z0-9_]*=\S*)\s*(?:\./cmd/)?$`)

// atCommandPosition reports whether a binary's name preceded by before starts a command, rather
// than being an argument of another one (eks-connector and pod-identity-webhook are also the names
// of Helm releases and namespaces).
func atCommandPosition(before string) bool { return commandPrefix.MatchString(before) }

func parseLine(where, line string, strict bool) []invocation {
	var out []invocation
	for _, m := range commandStart.FindAllStringSubmatchIndex(line, -1) {
		bin := line[m[2]:m[3]]
		if (bin == "eks-connector" || bin == "pod-identity-webhook") && !strict {
			continue
		}
		if (bin == "eks-connector" || bin == "pod-identity-webhook") && !atCommandPosition(line[:m[2]]) {
			continue // the chart, release or namespace: "helm install eks-connector", "-n pod-identity-webhook"
		}
		rest := line[m[1]:]
		if i := strings.IndexAny(rest, "|;#\"'`)"); i >= 0 {
			rest = rest[:i]
		}
		if i := strings.Index(rest, "&&"); i >= 0 {
			rest = rest[:i]
		}
		inv := invocation{where: where, binary: bin, text: strings.TrimSpace(line[m[0]:])}
		fields := strings.Fields(rest)
		i := 0
		for ; i < len(fields) && wordRE.MatchString(fields[i]); i++ {
			inv.words = append(inv.words, fields[i])
		}
		for _, f := range fields[i:] {
			if fm := flagRE.FindStringSubmatch(f); fm != nil {
				inv.flags = append(inv.flags, fm[1])
			}
		}
		if len(inv.words) == 0 && len(inv.flags) == 0 {
			continue // the name alone, not a command line
		}
		out = append(out, inv)
	}
	return out
}

// markdownCommands returns the command lines in a Markdown file's code blocks and code spans:
// that is where the docs name commands.
func markdownCommands(where, text string) []invocation {
	var out []invocation
	for _, m := range fenceRE.FindAllStringSubmatchIndex(text, -1) {
		line := strings.Count(text[:m[2]], "\n")
		for _, inv := range parseCommands(where, text[m[2]:m[3]], true) {
			inv.where = shiftLine(inv.where, line)
			out = append(out, inv)
		}
	}
	prose := fenceRE.ReplaceAllStringFunc(text, func(s string) string { return strings.Repeat("\n", strings.Count(s, "\n")) })
	for n, line := range strings.Split(prose, "\n") {
		for _, m := range codeSpanRE.FindAllStringSubmatch(line, -1) {
			for _, inv := range parseCommands(where, m[1], true) {
				inv.where = fmt.Sprintf("%s:%d", where, n+1)
				out = append(out, inv)
			}
		}
	}
	return out
}

func shiftLine(where string, by int) string {
	i := strings.LastIndex(where, ":")
	var n int
	fmt.Sscan(where[i+1:], &n)
	return fmt.Sprintf("%s:%d", where[:i], n+by)
}

// helpResult is what "<binary> <words> --help" printed.
type helpResult struct {
	path     []string // the command path cobra resolved, binary first
	leaf     bool     // no subcommands
	children []string
	text     string
	err      error
}

type helpCache struct {
	dir string
	mu  sync.Mutex
	m   map[string]helpResult
}

func (c *helpCache) help(bin string, words []string) helpResult {
	key := bin + " " + strings.Join(words, " ")
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.m[key]; ok {
		return r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.dir, bin), append(slices.Clone(words), "--help")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	r := helpResult{err: cmd.Run(), text: out.String()}
	if r.err != nil {
		r.err = fmt.Errorf("%v: %s", r.err, strings.TrimSpace(out.String()))
	}
	lines := strings.Split(r.text, "\n")
	for i, l := range lines {
		if l == "Usage:" && i+1 < len(lines) {
			for _, f := range strings.Fields(lines[i+1]) {
				if !wordRE.MatchString(f) {
					break
				}
				r.path = append(r.path, f)
			}
		}
		if l == "Available Commands:" {
			for _, c := range lines[i+1:] {
				f := strings.Fields(c)
				if len(f) == 0 {
					break
				}
				if f[0] != "help" && f[0] != "completion" {
					r.children = append(r.children, f[0])
				}
			}
		}
	}
	r.leaf = !strings.Contains(r.text, "\nAvailable Commands:\n")
	c.m[key] = r
	return r
}

// check reports what is wrong with an invocation: an unknown subcommand or flag.
func (c *helpCache) check(inv invocation) error {
	r := c.help(inv.binary, inv.words)
	if r.err != nil {
		return fmt.Errorf("%q: %v", inv.text, r.err)
	}
	if len(r.path) == 0 || r.path[0] != inv.binary {
		return fmt.Errorf("%q: no usage line in its help:\n%s", inv.text, r.text)
	}
	resolved := r.path[1:]
	if len(resolved) > len(inv.words) || !slices.Equal(resolved, inv.words[:len(resolved)]) {
		return fmt.Errorf("%q: resolved to %q", inv.text, strings.Join(r.path, " "))
	}
	if extra := inv.words[len(resolved):]; len(extra) > 0 && !r.leaf {
		return fmt.Errorf("%q: %q has no subcommand %q (it has %s)", inv.text, strings.Join(r.path, " "), extra[0], strings.Join(r.children, ", "))
	}
	for _, f := range inv.flags {
		pat := `(?m)(^|[\s,])` + regexp.QuoteMeta(f) + `([\s,=]|$)`
		if !regexp.MustCompile(pat).MatchString(r.text) {
			return fmt.Errorf("%q: %q has no flag %s", inv.text, strings.Join(r.path, " "), f)
		}
	}
	return nil
}

// TestEveryCommandTheDocsNameExists runs "<command> --help" for every command line in the
// README, docs/, the charts' READMEs and NOTES.txt, and every help text of every binary, and fails
// for a subcommand or flag the binaries do not have.
func TestEveryCommandTheDocsNameExists(t *testing.T) {
	root := moduleRoot(t)
	c := &helpCache{dir: buildBinaries(t), m: map[string]helpResult{}}
	var invs []invocation
	var files []string
	for _, pattern := range []string{"*.md", "docs/*.md", "charts/*/README.md", "examples/*/README.md", "deploy/*/README.md"} {
		m, _ := filepath.Glob(filepath.Join(root, pattern))
		files = append(files, m...)
	}
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		invs = append(invs, markdownCommands(rel, string(b))...)
	}
	notes, _ := filepath.Glob(filepath.Join(root, "charts/*/templates/NOTES.txt"))
	if len(notes) < 2 {
		// The connector's and the agent's at least: an empty glob would check nothing.
		t.Fatalf("found only %v NOTES.txt files", notes)
	}
	for _, f := range notes {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		invs = append(invs, parseCommands(rel, string(b), false)...)
	}
	// Every help text of every binary, walking the command tree.
	for _, pkg := range binaryPackages {
		bin := filepath.Base(pkg)
		queue := [][]string{nil}
		for len(queue) > 0 {
			words := queue[0]
			queue = queue[1:]
			r := c.help(bin, words)
			if r.err != nil {
				t.Fatalf("%s %s --help: %v", bin, strings.Join(words, " "), r.err)
			}
			for _, child := range r.children {
				queue = append(queue, append(slices.Clone(words), child))
			}
			where := "help of " + strings.Join(append([]string{bin}, words...), " ")
			invs = append(invs, parseCommands(where, r.text, false)...)
		}
	}
	if len(invs) < 20 {
		t.Fatalf("found only %d command lines: the extraction is broken", len(invs))
	}
	var problems []string
	for _, inv := range invs {
		if err := c.check(inv); err != nil {
			problems = append(problems, inv.where+": "+err.Error())
		}
	}
	t.Logf("checked %d command lines", len(invs))
	if len(problems) > 0 {
		t.Errorf("%d command lines name commands or flags that do not exist:\n%s", len(problems), strings.Join(problems, "\n"))
	}
}

// The checker itself: a made-up subcommand or flag is caught, a real one passes.
func TestCheckerCatchesWhatDoesNotExist(t *testing.T) {
	c := &helpCache{dir: buildBinaries(t), m: map[string]helpResult{}}
	md := "Run `ekslink eks grant` or:\n```sh\nekslink oidc keygen --no-such-flag\nekslink oidc keygen --out-dir x \\\n  --type rsa-2048\ngo run ./cmd/ekslink access grant --arn a --apply\n" +
		"eks-connector init --no-such-flag\nCI=true go run ./cmd/eks-connector proxy --user-extras\n" +
		"helm install eks-connector ./charts/eks-connector -n eks-connector --create-namespace\n```\n"
	invs := markdownCommands("x.md", md)
	if len(invs) != 6 {
		t.Fatalf("parsed %+v", invs)
	}
	want := map[string]bool{
		"ekslink eks grant":                                  false,
		"ekslink oidc keygen --no-such-flag":                 false,
		"ekslink oidc keygen --out-dir x    --type rsa-2048": true,
		"./cmd/ekslink access grant --arn a --apply":         true,
		"eks-connector init --no-such-flag":                  false,
		"./cmd/eks-connector proxy --user-extras":            true,
	}
	for _, inv := range invs {
		ok, known := want[inv.text]
		if !known {
			t.Errorf("parsed unexpected %q", inv.text)
		}
		if err := c.check(inv); (err == nil) != ok {
			t.Errorf("%s %q: err=%v, want ok=%v", inv.where, inv.text, err, ok)
		}
	}
}

// Every binary reports its version, VCS revision and Go version, as "version" and "--version".
func TestEveryBinaryReportsItsVersion(t *testing.T) {
	dir := buildBinaries(t)
	root := moduleRoot(t)
	// The go command stamps the revision of a checkout whose .git is a directory; a git worktree
	// (.git is a file) or a source tree without git gets none.
	var head string
	if fi, err := os.Stat(filepath.Join(root, ".git")); err == nil && fi.IsDir() {
		out, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatalf("git rev-parse HEAD: %v", err)
		}
		head = strings.TrimSpace(string(out))
	}
	for _, pkg := range binaryPackages {
		bin := filepath.Join(dir, filepath.Base(pkg))
		out, err := exec.Command(bin, "version", "-o", "json").Output()
		if err != nil {
			t.Fatalf("%s version: %v", pkg, err)
		}
		var info struct{ Version, Revision, GoVersion, Platform string }
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatalf("%s version -o json: %q: %v", pkg, out, err)
		}
		if info.Version == "" || info.GoVersion == "" || info.Platform == "" || info.Revision != head {
			t.Errorf("%s: %+v, want revision %q", pkg, info, head)
		}
		flag, err := exec.Command(bin, "--version").Output()
		if err != nil || !strings.HasPrefix(string(flag), filepath.Base(pkg)+" "+info.Version) || (head != "" && !strings.Contains(string(flag), head)) {
			t.Errorf("%s --version: %q %v", pkg, flag, err)
		}
	}
}

// Every flag of every binary that reads the environment says which variables in one form, "[env
// NAME, ...]" at the end of its help (internal/cli reads the names from there). The exceptions are
// the guards that must be typed, help, the version command's --output, and the webhook, which like
// the upstream one reads flags only.
func TestEveryFlagNamesItsEnvironmentVariables(t *testing.T) {
	c := &helpCache{dir: buildBinaries(t), m: map[string]helpResult{}}
	typed := map[string]bool{"--help": true, "--force": true, "--allow-rewrite": true, "--unblock-public-policy": true, "--version": true,
		"--show-activation": true, "--delete-in-cluster": true}
	flagLine := regexp.MustCompile(`^\s+(?:-[a-zA-Z], )?(--[a-z0-9-]+)\b`)
	envTag := regexp.MustCompile(`\[env [A-Z_][A-Z0-9_]*(?:, [A-Z_][A-Z0-9_]*)*\]`)
	checked := 0
	for _, pkg := range binaryPackages {
		bin := filepath.Base(pkg)
		if bin == "pod-identity-webhook" {
			continue
		}
		queue := [][]string{nil}
		for len(queue) > 0 {
			words := queue[0]
			queue = queue[1:]
			r := c.help(bin, words)
			if r.err != nil {
				t.Fatalf("%s %s --help: %v", bin, strings.Join(words, " "), r.err)
			}
			for _, child := range r.children {
				if child != "version" && child != "help" && child != "completion" {
					queue = append(queue, append(slices.Clone(words), child))
				}
			}
			if !r.leaf {
				continue
			}
			for _, line := range strings.Split(r.text, "\n") {
				m := flagLine.FindStringSubmatch(line)
				if m == nil || typed[m[1]] {
					continue
				}
				checked++
				if strings.Contains(line, "(env ") || !envTag.MatchString(line) {
					t.Errorf("%s %s %s: no [env NAME] at the end of its help: %q", bin, strings.Join(words, " "), m[1], strings.TrimSpace(line))
				}
			}
		}
	}
	if checked < 50 {
		t.Fatalf("checked only %d flags: the extraction is broken", checked)
	}
	t.Logf("checked %d flag lines", checked)
}
