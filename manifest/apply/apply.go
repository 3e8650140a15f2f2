package apply

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// DefaultFieldManager is the server-side apply field manager when Options.FieldManager is empty.
const DefaultFieldManager = "ekslink"

// Options tune Apply.
type Options struct {
	// FieldManager is the server-side apply manager (default DefaultFieldManager). Keep it stable
	// across releases: the API server records field ownership under this name.
	FieldManager string
	// DryRun validates every object on the server (admission, schema, RBAC escalation checks)
	// without persisting anything. Namespaced objects still need their namespace to exist.
	DryRun bool
}

// Error names the object the API server refused (or that could not be written or removed).
type Error struct {
	// Kind, Namespace and Name identify the object.
	Kind, Namespace, Name string
	// Err is the API server's (or the REST mapper's) error.
	Err error
}

// Error names the object and the server's reason.
func (e *Error) Error() string {
	id := e.Name
	if e.Namespace != "" {
		id = e.Namespace + "/" + e.Name
	}
	return fmt.Sprintf("apply: %s %s: %v", e.Kind, id, e.Err)
}

// Unwrap returns the API error (use apierrors.IsForbidden and friends on it).
func (e *Error) Unwrap() error { return e.Err }

// Apply writes the objects in order with server-side apply, forcing ownership of the fields they
// set (so a list such as a binding's subjects becomes exactly the given one), and stops at the
// first refusal (*Error). Server-side apply rejects fields the API does not know, so a typo in a
// manifest fails here rather than being dropped silently.
func Apply(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured, opts Options) error {
	if cfg == nil {
		return errors.New("apply: no rest.Config given")
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("apply: discovery client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("apply: dynamic client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	fm := opts.FieldManager
	if fm == "" {
		fm = DefaultFieldManager
	}
	ao := metav1.ApplyOptions{FieldManager: fm, Force: true}
	if opts.DryRun {
		ao.DryRun = []string{metav1.DryRunAll}
	}
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		fail := func(err error) error {
			return &Error{Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName(), Err: err}
		}
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fail(err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			if u.GetNamespace() == "" {
				return fail(errors.New("namespaced object without metadata.namespace"))
			}
			ri = dyn.Resource(mapping.Resource).Namespace(u.GetNamespace())
		}
		if _, err := ri.Apply(ctx, u.GetName(), u, ao); err != nil {
			return fail(err)
		}
	}
	return nil
}
