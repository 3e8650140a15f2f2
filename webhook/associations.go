package webhook

import (
	"context"
	"sync"

	"k8s.io/client-go/tools/cache"

	"github.com/ekslink/ekslink/podidentity/association"
)

// identitySources holds the two sources of container-credentials service accounts, the
// identities file and the Pod Identity associations ConfigMap; the Handler serves their union,
// recomputed on every change of either (never per admission).
type identitySources struct {
	mu    sync.Mutex
	file  Identities
	assoc Identities
}

// setFileIdentities replaces the identities file's set and publishes the union.
func (h *Handler) setFileIdentities(ids Identities) {
	h.idSources.mu.Lock()
	defer h.idSources.mu.Unlock()
	h.idSources.file = ids
	h.publishIdentities()
}

// setAssociations replaces the associated service accounts and publishes the union.
func (h *Handler) setAssociations(as []association.Association) {
	ids := make(Identities, len(as))
	for _, a := range as {
		ids[Identity{Namespace: a.Namespace, ServiceAccount: a.ServiceAccount}] = struct{}{}
	}
	h.idSources.mu.Lock()
	defer h.idSources.mu.Unlock()
	h.idSources.assoc = ids
	h.publishIdentities()
	h.metrics.reloads.WithLabelValues("associations", "ok").Inc()
	h.log.Info("Pod Identity associations loaded", "associations", len(as))
}

// publishIdentities stores the union of the sources; idSources.mu is held.
func (h *Handler) publishIdentities() {
	s := &h.idSources
	if len(s.assoc) == 0 {
		ids := s.file
		h.identities.Store(&ids)
		return
	}
	ids := make(Identities, len(s.file)+len(s.assoc))
	for id := range s.file {
		ids[id] = struct{}{}
	}
	for id := range s.assoc {
		ids[id] = struct{}{}
	}
	h.identities.Store(&ids)
}

// startAssociations runs the association Index (podidentity/association, the agent's own read
// side: one informer on the one ConfigMap) until ctx ends.
func (h *Handler) startAssociations(ctx context.Context) cache.InformerSynced {
	ix := association.NewIndex(h.client, association.IndexOptions{
		Options: *h.opts.Associations, Logger: h.log.WithName("associations"), ResyncPeriod: h.opts.ResyncPeriod,
		OnChange: h.setAssociations,
	})
	go ix.Run(ctx)
	return ix.HasSynced
}
