package association

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// IndexOptions configure an Index; zero values mean the defaults.
type IndexOptions struct {
	Options
	// Logger reports entries that are not valid associations (default discard).
	Logger logr.Logger
	// ResyncPeriod of the informer (default 0: none; the watch delivers every change).
	ResyncPeriod time.Duration
	// OnChange, when set, is called with the valid associations (sorted by key) after every
	// change of the table, from the informer's goroutine (one call at a time); an empty slice
	// when the ConfigMap is deleted.
	OnChange func(associations []Association)
}

// Index is the agent's read side: an informer on the ConfigMap (list and watch with a
// metadata.name field selector, so RBAC can name the one object) and an in-memory table. Lookup
// never calls the API server.
type Index struct {
	client   kubernetes.Interface
	opts     IndexOptions
	log      logr.Logger
	table    atomic.Pointer[map[string]Association]
	informer cache.SharedIndexInformer
}

// NewIndex returns an Index; call Run to start it.
func NewIndex(client kubernetes.Interface, opts IndexOptions) *Index {
	opts.Options = opts.Options.withDefaults()
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	ix := &Index{client: client, opts: opts, log: opts.Logger}
	empty := map[string]Association{}
	ix.table.Store(&empty)
	sel := fields.OneTermEqualSelector("metadata.name", opts.Name).String()
	cms := client.CoreV1().ConfigMaps(opts.Namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return cms.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return cms.Watch(ctx, o)
		},
	}
	ix.informer = cache.NewSharedIndexInformer(lw, &corev1.ConfigMap{}, opts.ResyncPeriod, cache.Indexers{})
	_, _ = ix.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { ix.set(obj) },
		UpdateFunc: func(_, obj any) { ix.set(obj) },
		DeleteFunc: func(any) {
			empty := map[string]Association{}
			ix.table.Store(&empty)
			if opts.OnChange != nil {
				opts.OnChange(nil)
			}
		},
	})
	return ix
}

func (ix *Index) set(obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok || cm.Name != ix.opts.Name {
		return
	}
	as, problems := Decode(cm.Data)
	for _, p := range problems {
		ix.log.Error(p.Err, "skipping an entry that is not a valid association", "configMap", ix.opts.Namespace+"/"+ix.opts.Name, "key", p.Key)
	}
	t := make(map[string]Association, len(as))
	for _, a := range as {
		t[a.Key()] = a
	}
	ix.table.Store(&t)
	if ix.opts.OnChange != nil {
		ix.opts.OnChange(as)
	}
}

// Run runs the informer until ctx ends.
func (ix *Index) Run(ctx context.Context) { ix.informer.RunWithContext(ctx) }

// HasSynced reports whether the first list has been seen.
func (ix *Index) HasSynced() bool { return ix.informer.HasSynced() }

// WaitForSync waits until the first list has been seen, or ctx ends.
func (ix *Index) WaitForSync(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), ix.informer.HasSynced) {
		return fmt.Errorf("association: ConfigMap %s/%s not synced: %w", ix.opts.Namespace, ix.opts.Name, context.Cause(ctx))
	}
	return nil
}

// Lookup returns the association of a service account, from memory.
func (ix *Index) Lookup(namespace, serviceAccount string) (Association, bool) {
	a, ok := (*ix.table.Load())[Key(namespace, serviceAccount)]
	return a, ok
}

// Len is the number of valid associations.
func (ix *Index) Len() int { return len(*ix.table.Load()) }
