package awsauth

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DefaultMaxAttempts bounds the read-modify-write attempts of one edit under contention.
const DefaultMaxAttempts = 30

// Options configure an Editor. The zero value edits kube-system/aws-auth.
type Options struct {
	// Namespace and Name locate the ConfigMap (defaults Namespace and Name).
	Namespace, Name string
	// FieldManager is recorded on writes (default "ekslink").
	FieldManager string
	// MaxAttempts bounds retries on conflicts (default DefaultMaxAttempts).
	MaxAttempts int
	// Logger receives one line per write and the warnings (default: discard).
	Logger logr.Logger
}

// EditOptions tune one edit.
type EditOptions struct {
	// DryRun computes the result and diff without writing.
	DryRun bool
	// Force allows removing the last system:masters mapping or a node role mapping.
	Force bool
	// AllowRewrite accepts an edit of a list the editor cannot splice into (flow style, anchors,
	// tabs, uneven indentation), which rewrites the entries the edit did not change. What the
	// authenticator reads from them, and the text of their other fields (sso, userid), is still
	// checked to be unchanged; their layout and the list's comments are not kept. Without it such
	// an edit fails with ErrRewrite and the diff.
	AllowRewrite bool
}

// Result describes an edit.
type Result struct {
	// Changed is true when the edit changed the content (for a dry run: would change it).
	Changed bool
	// Created is true when the ConfigMap did not exist (and, unless DryRun, was created).
	Created bool
	// DryRun echoes EditOptions.DryRun.
	DryRun bool
	// Diff is a unified-style diff of the changed data keys ("" when nothing changes).
	Diff string
	// Warnings are non-fatal findings: stripped role paths, collapsed duplicates, problems in
	// entries this edit did not touch.
	Warnings []string
	// ResourceVersion is the ConfigMap's resourceVersion after the edit.
	ResourceVersion string
	// Attempts is the number of read-modify-write rounds (more than one under contention).
	Attempts int
}

// Editor edits the aws-auth ConfigMap. It is safe for concurrent use; concurrent edits, in this
// process or elsewhere, are serialized by the API server's resourceVersion check.
type Editor struct {
	client kubernetes.Interface
	opts   Options
	cache  *itemCache
}

// NewEditor returns an Editor.
func NewEditor(client kubernetes.Interface, opts Options) *Editor {
	if opts.Namespace == "" {
		opts.Namespace = Namespace
	}
	if opts.Name == "" {
		opts.Name = Name
	}
	if opts.FieldManager == "" {
		opts.FieldManager = "ekslink"
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	return &Editor{client: client, opts: opts, cache: &itemCache{}}
}

// Get reads and parses the ConfigMap. A missing ConfigMap is an empty Config; a malformed one is
// an error wrapping ErrMalformed.
func (e *Editor) Get(ctx context.Context) (*Config, error) {
	cm, err := e.client.CoreV1().ConfigMaps(e.opts.Namespace).Get(ctx, e.opts.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ParseData(nil)
	}
	if err != nil {
		return nil, fmt.Errorf("awsauth: reading %s/%s: %w", e.opts.Namespace, e.opts.Name, err)
	}
	return ParseData(cm.Data)
}

// Edit applies fn to the current Config and writes the result if it changed. fn may run more than
// once (after a conflict) and must be deterministic in its input. Nothing is written when fn fails,
// the result is invalid (ErrInvalid), a guard refuses (ErrLastMasters, ErrNodeRole), the edit would
// rewrite other entries (ErrRewrite), or it would change a list that is malformed (ErrMalformed; a
// malformed list is written back as it was and does not block edits of the other lists).
func (e *Editor) Edit(ctx context.Context, opts EditOptions, fn func(*Config) ([]string, error)) (*Result, error) {
	cms := e.client.CoreV1().ConfigMaps(e.opts.Namespace)
	id := e.opts.Namespace + "/" + e.opts.Name
	for attempt := 1; ; attempt++ {
		cm, err := cms.Get(ctx, e.opts.Name, metav1.GetOptions{})
		created := apierrors.IsNotFound(err)
		if err != nil && !created {
			return nil, fmt.Errorf("awsauth: reading %s: %w", id, err)
		}
		if created {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: e.opts.Namespace, Name: e.opts.Name}}
		}
		res, newData, err := e.plan(cm.Data, opts, fn)
		if res != nil {
			res.Created, res.ResourceVersion, res.Attempts = created, cm.ResourceVersion, attempt
		}
		if err != nil || !res.Changed || opts.DryRun {
			return res, err
		}
		warnings := res.Warnings
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		for _, k := range []string{KeyMapRoles, KeyMapUsers, KeyMapAccounts} {
			v, ok := newData[k]
			if !ok || (v == "" && cm.Data[k] != "") {
				delete(cm.Data, k)
				continue
			}
			cm.Data[k] = v
		}
		var out *corev1.ConfigMap
		if created {
			out, err = cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: e.opts.FieldManager})
		} else {
			// Update carries cm.ResourceVersion: the API server refuses it if anyone wrote since.
			out, err = cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: e.opts.FieldManager})
		}
		if err == nil {
			res.ResourceVersion = out.ResourceVersion
			for _, w := range warnings {
				e.opts.Logger.Info("aws-auth warning", "configmap", id, "warning", w)
			}
			e.opts.Logger.Info("aws-auth updated", "configmap", id, "created", created, "resourceVersion", out.ResourceVersion, "attempts", attempt)
			return res, nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("awsauth: writing %s: %w", id, err)
		}
		if attempt >= e.opts.MaxAttempts {
			return nil, fmt.Errorf("awsauth: writing %s: still conflicting after %d attempts: %w", id, attempt, err)
		}
		e.opts.Logger.V(1).Info("aws-auth write conflict, re-reading", "configmap", id, "attempt", attempt)
		// Jittered backoff so that contending editors do not keep colliding.
		delay := time.Duration(rand.Int64N(int64(time.Millisecond) * int64(min(attempt, 5))))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// plan applies fn to a copy of the parsed data and returns the result (diff, warnings) and the
// data keys to write. It reads nothing from the API server, so it is also what a dry run costs.
func (e *Editor) plan(data map[string]string, opts EditOptions, fn func(*Config) ([]string, error)) (*Result, map[string]string, error) {
	id := e.opts.Namespace + "/" + e.opts.Name
	// Each list is read on its own, as the authenticator reads them: a malformed list (which the
	// authenticator ignores whole) blocks edits of that list only, never a removal elsewhere.
	before := readData(data, e.cache)
	after := before.Clone()
	warnings, err := fn(after)
	if err != nil {
		for _, k := range []string{KeyMapRoles, KeyMapUsers, KeyMapAccounts} {
			if berr := before.broken[k]; berr != nil && errors.Is(err, ErrNotFound) {
				err = fmt.Errorf("%w (%s could not be read: %v)", err, k, berr)
			}
		}
		return nil, nil, err
	}
	for _, k := range []string{KeyMapRoles, KeyMapUsers, KeyMapAccounts} {
		berr := before.broken[k]
		if berr == nil {
			continue
		}
		if k == KeyMapRoles && len(after.Roles) > 0 || k == KeyMapUsers && len(after.Users) > 0 || k == KeyMapAccounts && len(after.Accounts) > 0 {
			return nil, nil, fmt.Errorf("%w (%s left untouched: fix %s by hand; until then it cannot be edited, the other lists can)", berr, id, k)
		}
		warnings = append(warnings, fmt.Sprintf("existing problem: %v: the authenticator ignores the whole list; fix it by hand", berr))
	}
	res := &Result{DryRun: opts.DryRun}
	newData, rewritten, err := after.render(before)
	if err != nil {
		return nil, nil, fmt.Errorf("awsauth: %w; nothing written", err)
	}
	oldData := map[string]string{}
	for _, k := range []string{KeyMapRoles, KeyMapUsers, KeyMapAccounts} {
		if v, ok := data[k]; ok {
			oldData[k] = v
		}
	}
	res.Diff = diffData(id, oldData, newData)
	res.Changed = res.Diff != ""
	// Problems already present before the edit are warnings; new ones block the write. They are
	// matched by the entry they concern, not by its position.
	var fresh []string
	if problems := after.problems(); len(problems) > 0 {
		old := map[problemKey]bool{}
		for _, p := range before.problems() {
			if k, ok := p.key(); ok {
				old[k] = true
			}
		}
		for _, p := range problems {
			if k, ok := p.key(); ok && old[k] {
				warnings = append(warnings, "existing entry: "+p.String())
			} else {
				fresh = append(fresh, p.String())
			}
		}
	}
	res.Warnings = warnings
	if !res.Changed {
		return res, nil, nil
	}
	// Fail closed on a rendering bug: what is written must parse back to what was meant, with
	// every untouched entry as it was written and the other fields of changed entries unchanged.
	if err := checkRendered(newData, after, e.cache); err != nil {
		return nil, nil, fmt.Errorf("awsauth: internal error: %w; nothing written", err)
	}
	if len(rewritten) > 0 && !opts.AllowRewrite {
		return res, nil, fmt.Errorf("%w: %s (the list is written in a layout the editor cannot edit in place: flow style, anchors, tabs or uneven indentation; see the diff, then rewrite the list in block style by hand or allow the rewrite)", ErrRewrite, strings.Join(rewritten, ", "))
	}
	for _, r := range rewritten {
		res.Warnings = append(res.Warnings, "rewritten in a new layout (same meaning): "+r)
	}
	if len(fresh) > 0 {
		return res, nil, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(fresh, "; "))
	}
	if !opts.Force {
		if err := guard(before, after); err != nil {
			return res, nil, err
		}
	}
	return res, newData, nil
}

// UpsertRole adds or updates a role mapping.
func (e *Editor) UpsertRole(ctx context.Context, m RoleMapping, opts EditOptions) (*Result, error) {
	return e.Edit(ctx, opts, func(c *Config) ([]string, error) {
		_, w, err := c.UpsertRole(m)
		return w, err
	})
}

// UpsertUser adds or updates a user mapping.
func (e *Editor) UpsertUser(ctx context.Context, m UserMapping, opts EditOptions) (*Result, error) {
	return e.Edit(ctx, opts, func(c *Config) ([]string, error) {
		_, w, err := c.UpsertUser(m)
		return w, err
	})
}

// ErrNotFound is returned by Remove when no mapping of the ARN exists.
var ErrNotFound = errors.New("awsauth: no mapping for this ARN")

// Remove deletes the role or user mappings of arn.
func (e *Editor) Remove(ctx context.Context, arn string, opts EditOptions) (*Result, error) {
	return e.Edit(ctx, opts, func(c *Config) ([]string, error) {
		n, err := c.Remove(arn)
		if err == nil && n == 0 {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, arn)
		}
		return nil, err
	})
}

// Upsert adds or updates a role mapping in kube-system/aws-auth with default options.
func Upsert(ctx context.Context, client kubernetes.Interface, m RoleMapping) (*Result, error) {
	return NewEditor(client, Options{}).UpsertRole(ctx, m, EditOptions{})
}
