package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/ekslink/ekslink/internal/filewatch"
)

// Start starts the service-account informer (and the ConfigMap informer and identities file
// watcher when configured) and waits until their first contents are in, or ctx ends. They stop
// when ctx is cancelled. Until Start returns nil, Ready reports an error; the Handler still
// serves, with live lookups for every service account.
func (h *Handler) Start(ctx context.Context) error {
	h.mu.Lock()
	if h.started {
		h.mu.Unlock()
		return errors.New("webhook: Handler started twice")
	}
	h.started = true
	h.mu.Unlock()

	sas := h.client.CoreV1().ServiceAccounts(metav1.NamespaceAll)
	saInformer := newInformer(h.client, sas.List, sas.Watch, &corev1.ServiceAccount{}, h.opts.ResyncPeriod,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	// Keep only what Mutate reads: the upstream's memory saving for large clusters (main.go
	// stripDownServiceAccount), further (sacache.go).
	strip := stripServiceAccount(h.cfg.AnnotationPrefix + "/")
	if err := saInformer.SetTransform(func(obj any) (any, error) {
		h.metrics.used.Set(1) // the upstream sets it for every service account its cache adds
		return strip(obj)
	}); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	indexer := saInformer.GetIndexer()
	synced := []cache.InformerSynced{saInformer.HasSynced}

	if ns := h.opts.ConfigMapNamespace; ns != "" {
		cms := h.client.CoreV1().ConfigMaps(ns)
		byName := func(o metav1.ListOptions) metav1.ListOptions {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ConfigMapName).String()
			return o
		}
		cm := newInformer(h.client,
			func(ctx context.Context, o metav1.ListOptions) (*corev1.ConfigMapList, error) {
				return cms.List(ctx, byName(o))
			},
			func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return cms.Watch(ctx, byName(o))
			},
			&corev1.ConfigMap{}, h.opts.ResyncPeriod, cache.Indexers{})
		if _, err := cm.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { h.loadConfigMap(obj) },
			UpdateFunc: func(_, obj any) { h.loadConfigMap(obj) },
			DeleteFunc: func(any) {
				var none Mappings
				h.mappings.Store(&none)
				h.log.Info("ConfigMap deleted: no mappings", "namespace", ns, "name", ConfigMapName)
			},
		}); err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		synced = append(synced, cm.HasSynced)
		go cm.RunWithContext(ctx)
	}
	go saInformer.RunWithContext(ctx)
	if h.opts.Associations != nil {
		synced = append(synced, h.startAssociations(ctx))
	}

	if h.opts.IdentitiesFile != "" {
		if err := h.loadIdentities(); err != nil {
			return err
		}
		go h.watchIdentities(ctx)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("webhook: caches not synced: %w", context.Cause(ctx))
	}
	h.saCache.Store(&indexer)
	h.mu.Lock()
	h.synced = synced
	h.mu.Unlock()
	h.log.Info("caches synced; serving from the informer cache")
	return nil
}

// Ready reports nil once Start has synced the caches (for /readyz).
func (h *Handler) Ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.synced == nil {
		return errors.New("webhook: caches not synced yet")
	}
	for _, s := range h.synced {
		if !s() {
			return errors.New("webhook: caches not synced")
		}
	}
	return nil
}

func (h *Handler) loadConfigMap(obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok || cm.Name != ConfigMapName {
		return
	}
	m, err := ParseMappings(cm.Data[ConfigMapKey])
	if err != nil {
		h.metrics.reloads.WithLabelValues("configmap", "error").Inc()
		h.log.Error(err, "ConfigMap ignored; keeping the previous mappings", "namespace", cm.Namespace, "resourceVersion", cm.ResourceVersion)
		return
	}
	h.mappings.Store(&m)
	h.metrics.reloads.WithLabelValues("configmap", "ok").Inc()
	h.log.Info("ConfigMap loaded", "namespace", cm.Namespace, "entries", len(m), "resourceVersion", cm.ResourceVersion)
}

// loadIdentities reads the identities file; a file that does not parse leaves the previous set
// (upstream pkg/containercredentials/config.go Load).
func (h *Handler) loadIdentities() error {
	data, err := os.ReadFile(h.opts.IdentitiesFile)
	if err == nil {
		var ids Identities
		if ids, err = ParseIdentities(data); err == nil {
			h.setFileIdentities(ids)
			h.metrics.reloads.WithLabelValues("identities", "ok").Inc()
			h.log.Info("identities file loaded", "file", h.opts.IdentitiesFile, "identities", len(ids))
			return nil
		}
	}
	h.metrics.reloads.WithLabelValues("identities", "error").Inc()
	return fmt.Errorf("webhook: identities file %s: %w", h.opts.IdentitiesFile, err)
}

// watchIdentities reloads the identities file when its directory changes (fsnotify sees the
// atomic renames and the ..data symlink swaps of mounted ConfigMaps), and every ResyncPeriod as a
// safety net.
func (h *Handler) watchIdentities(ctx context.Context) {
	var last []byte
	for range filewatch.Start(ctx, filewatch.Options{
		Files: []string{h.opts.IdentitiesFile}, Interval: h.opts.ResyncPeriod, Logger: h.log.WithName("identities-file"),
	}) {
		data, err := os.ReadFile(h.opts.IdentitiesFile)
		if err == nil && bytes.Equal(data, last) {
			continue
		}
		last = data
		if err := h.loadIdentities(); err != nil {
			h.log.Error(err, "identities file ignored; keeping the previous identities")
		}
	}
}

// newInformer is a shared informer listing and watching one kind of object through the typed
// client, as client-go's informers package builds it (NewFilteredServiceAccountInformer); the
// webhook needs two, and that package's factory links the informers, listers and clients of
// every API group into the binary.
func newInformer[L runtime.Object](client kubernetes.Interface, list func(context.Context, metav1.ListOptions) (L, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error), example runtime.Object, resync time.Duration, indexers cache.Indexers,
) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc:  func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return list(ctx, o) },
		WatchFuncWithContext: watchFn,
	}
	return cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, client), example,
		cache.SharedIndexInformerOptions{ResyncPeriod: resync, Indexers: indexers})
}
