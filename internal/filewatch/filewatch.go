// Package filewatch follows files that other programs rewrite while ekslink runs (service account
// tokens and CA bundles, the SSM vault, a shared credentials file, a mounted identities file) and
// tells its caller when to read them again. It watches the files' directories with fsnotify, so a
// rewrite by rename (an atomic replace) and Kubernetes' "..data" symlink swap of a mounted
// ConfigMap or projected volume are seen as well as a write in place; it waits for the writes to
// settle (debounce); and it sends a periodic reason as a safety net for missed events, for
// directories that do not exist yet and for nodes where no watcher can be created (inotify limits).
//
// It does not read the files: the caller reads and decides what changed.
package filewatch

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
)

// Reasons sent on the channel Start returns.
const (
	// ReasonChanged follows file events in a watched directory, after Debounce.
	ReasonChanged = "file changed"
	// ReasonPeriodic is the periodic safety net, every Interval.
	ReasonPeriodic = "periodic"
)

// dataLink is the symlink kubelet's atomic writer swaps to publish a new version of a mounted
// volume (k8s.io/kubernetes/pkg/volume/util/atomic_writer.go): the files are symlinks through it,
// so their own names see no event.
const dataLink = "..data"

// Options configure Start.
type Options struct {
	// Files are the files to follow; their directories are watched. Events for other names in those
	// directories are ignored, except the "..data" swap.
	Files []string
	// Interval is the period of ReasonPeriodic (required, > 0).
	Interval time.Duration
	// Debounce is how long no further event must arrive before ReasonChanged is sent (0: at once).
	// A rewrite in place or a symlink swap produces several events; one read after them is enough.
	Debounce time.Duration
	// DisableEvents uses the periodic reason only (tests of the periodic path).
	DisableEvents bool
	// Logger receives watcher problems; the periodic reason continues after each.
	Logger logr.Logger
	// Watching, when set, is called once the directories are watched (or watching failed).
	Watching func()
	// NewWatcher creates the fsnotify watcher (default fsnotify.NewWatcher; tests make it fail).
	NewWatcher func() (*fsnotify.Watcher, error)
}

// Start follows o.Files until ctx ends and returns the channel its reasons arrive on. The channel
// holds at most one pending reason (a slow reader gets one read for many events, never a backlog)
// and is closed when ctx ends.
func Start(ctx context.Context, o Options) <-chan string {
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.NewWatcher == nil {
		o.NewWatcher = fsnotify.NewWatcher
	}
	out := make(chan string, 1)
	go run(ctx, o, out)
	return out
}

func run(ctx context.Context, o Options, out chan string) {
	defer close(out)
	send := func(reason string) {
		select {
		case out <- reason:
		default: // one pending reason is enough: the reader reads the current files
		}
	}
	dirs := map[string]bool{} // directory -> watched
	names := map[string]bool{dataLink: true}
	for _, f := range o.Files {
		if f != "" {
			dirs[filepath.Dir(f)] = false
			names[filepath.Base(f)] = true
		}
	}
	var w *fsnotify.Watcher
	if !o.DisableEvents {
		var err error
		if w, err = o.NewWatcher(); err != nil {
			o.Logger.Error(err, "file watching unavailable; re-reading periodically only", "interval", o.Interval.String())
			w = nil
		} else {
			defer w.Close()
		}
	}
	// watch adds the directories not watched yet; one that does not exist yet is tried again at
	// the next period.
	watch := func(first bool) {
		if w == nil {
			return
		}
		for d, ok := range dirs {
			if ok {
				continue
			}
			if err := w.Add(d); err != nil {
				if first {
					o.Logger.V(1).Info("cannot watch the directory yet; re-reading periodically", "dir", d, "error", err.Error())
				}
				continue
			}
			dirs[d] = true
		}
	}
	watch(true)
	if o.Watching != nil {
		o.Watching()
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			watch(false)
			send(ReasonPeriodic)
		case ev, ok := <-events:
			if !ok {
				o.Logger.Error(nil, "file watcher stopped; re-reading periodically only")
				events, errs = nil, nil
				continue
			}
			if !names[filepath.Base(ev.Name)] {
				continue
			}
			if o.Debounce <= 0 {
				send(ReasonChanged)
				continue
			}
			settle.Reset(o.Debounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			o.Logger.Error(err, "file watch error; the periodic re-read continues")
		case <-settle.C:
			send(ReasonChanged)
		}
	}
}
