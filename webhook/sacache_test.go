package webhook

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// The informer cache keeps of a service account what Mutate and the Events read: name,
// namespace, uid, resource version and the annotations under the prefix; the informer's key and
// namespace index functions read it; the transform is idempotent (the informer may pass it what
// it already holds) and passes tombstones through.
func TestStripServiceAccount(t *testing.T) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps", UID: "6f0c", ResourceVersion: "42",
		Labels: map[string]string{"app": "web"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		Annotations: map[string]string{
			"eks.amazonaws.com/role-arn":                       testARN,
			"eks.amazonaws.com/sts-regional-endpoints":         "true",
			"kubectl.kubernetes.io/last-applied-configuration": `{"big":"json"}`,
			"example.com/eks.amazonaws.com/role-arn":           "other",
		}},
		Secrets: []corev1.ObjectReference{{Name: "token"}}}
	strip := stripServiceAccount("eks.amazonaws.com/")
	obj, err := strip(sa)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := obj.(*cachedServiceAccount)
	if !ok {
		t.Fatalf("the transform kept a %T", obj)
	}
	want := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps", UID: "6f0c", ResourceVersion: "42",
		Annotations: map[string]string{"eks.amazonaws.com/role-arn": testARN, "eks.amazonaws.com/sts-regional-endpoints": "true"}}}
	if got := c.serviceAccount(); !reflect.DeepEqual(got, want) {
		t.Errorf("cached service account\n got %+v\nwant %+v", got, want)
	}
	if again, _ := strip(obj); again != obj {
		t.Error("the transform is not idempotent")
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "apps/web", Obj: obj}
	if got, _ := strip(tomb); got != tomb {
		t.Error("the transform changed a tombstone")
	}
	if key, err := cache.MetaNamespaceKeyFunc(obj); err != nil || key != "apps/web" {
		t.Errorf("key %q, %v; want apps/web", key, err)
	}
	if ns, err := cache.MetaNamespaceIndexFunc(obj); err != nil || len(ns) != 1 || ns[0] != "apps" {
		t.Errorf("namespace index %q, %v; want [apps]", ns, err)
	}
	bare, _ := strip(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: "apps"}})
	if got := bare.(*cachedServiceAccount).serviceAccount(); got.Annotations != nil {
		t.Errorf("a service account without annotations got %v", got.Annotations)
	}

	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	if err := indexer.Add(obj); err != nil {
		t.Fatal(err)
	}
	if got, ok := cachedServiceAccountOf(indexer, "apps", "web"); !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("lookup: %+v, %v", got, ok)
	}
	if _, ok := cachedServiceAccountOf(indexer, "apps", "other"); ok {
		t.Error("found a service account that is not cached")
	}
}
