package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Delete removes the objects in reverse order (the reverse of the order Apply writes them) with
// background propagation, and returns how many it deleted. An object that does not exist, or
// whose kind the API server does not serve, counts as deleted already, so Delete can be repeated.
// It stops at the first other refusal (*Error).
func Delete(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured) (int, error) {
	if cfg == nil {
		return 0, errors.New("apply: no rest.Config given")
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return 0, fmt.Errorf("apply: discovery client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return 0, fmt.Errorf("apply: dynamic client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	policy := metav1.DeletePropagationBackground
	n := 0
	for _, u := range slices.Backward(objs) {
		gvk := u.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return n, &Error{Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName(), Err: err}
		}
		var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(mapping.Resource).Namespace(u.GetNamespace())
		}
		err = ri.Delete(ctx, u.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return n, &Error{Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName(), Err: err}
		default:
			n++
		}
	}
	return n, nil
}
