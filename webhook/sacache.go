package webhook

import (
	"strings"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// cachedServiceAccount is what the informer cache keeps of a service account: its name,
// namespace, uid and resource version (what the Events name) and the annotations under the
// prefix (what Mutate reads), as key/value pairs: a Go map of even one entry takes about 300
// bytes, a corev1.ServiceAccount 320 more; this is about 100 plus the strings. Namespaces and
// annotation keys repeat across service accounts: one copy each (unique.Make).
type cachedServiceAccount struct {
	name, namespace, resourceVersion string
	uid                              types.UID
	annotations                      []string // key, value, key, value, ...
}

// GetObjectMeta lets the informer's key and namespace index functions (meta.Accessor) read the
// cached service account; they run once per watch event, never per admission.
func (c *cachedServiceAccount) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Name: c.name, Namespace: c.namespace, UID: c.uid, ResourceVersion: c.resourceVersion}
}

// serviceAccount is the cached service account as Mutate and the Events read it.
func (c *cachedServiceAccount) serviceAccount() *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: c.namespace, UID: c.uid, ResourceVersion: c.resourceVersion}}
	if len(c.annotations) > 0 {
		sa.Annotations = make(map[string]string, len(c.annotations)/2)
		for i := 0; i+1 < len(c.annotations); i += 2 {
			sa.Annotations[c.annotations[i]] = c.annotations[i+1]
		}
	}
	return sa
}

// stripServiceAccount is the informer's transform: a service account becomes a
// cachedServiceAccount keeping the annotations under prefix. Anything else (a tombstone, an
// object already transformed) is kept as it is.
func stripServiceAccount(prefix string) cache.TransformFunc {
	return func(obj any) (any, error) {
		sa, ok := obj.(*corev1.ServiceAccount)
		if !ok {
			return obj, nil
		}
		c := &cachedServiceAccount{name: sa.Name, namespace: unique.Make(sa.Namespace).Value(), uid: sa.UID, resourceVersion: sa.ResourceVersion}
		n := 0
		for k := range sa.Annotations {
			if strings.HasPrefix(k, prefix) {
				n++
			}
		}
		if n > 0 {
			c.annotations = make([]string, 0, 2*n)
			for k, v := range sa.Annotations {
				if strings.HasPrefix(k, prefix) {
					c.annotations = append(c.annotations, unique.Make(k).Value(), v)
				}
			}
		}
		return c, nil
	}
}

// cachedServiceAccountOf returns the service account the informer cache holds under
// "<namespace>/<name>", or false.
func cachedServiceAccountOf(indexer cache.Indexer, namespace, name string) (*corev1.ServiceAccount, bool) {
	obj, exists, err := indexer.GetByKey(namespace + "/" + name)
	if err != nil || !exists {
		return nil, false
	}
	c, ok := obj.(*cachedServiceAccount)
	if !ok {
		return nil, false
	}
	return c.serviceAccount(), true
}
