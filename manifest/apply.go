package manifest

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/ekslink/ekslink/manifest/apply"
)

// DefaultFieldManager is the server-side apply field manager of Apply.
const DefaultFieldManager = "ekslink-manifest"

// ApplyOptions tune Apply (FieldManager defaults to DefaultFieldManager). It is apply.Options.
type ApplyOptions = apply.Options

// ApplyError names the object the API server refused. It is apply.Error, the type every ekslink
// apply returns, so errors.As with *ApplyError also matches errors of impersonation/rbac.Apply.
type ApplyError = apply.Error

// Apply writes the objects in order with server-side apply, forcing ownership of the fields they
// set, and stops at the first refusal (*ApplyError). Server-side apply rejects fields the API does
// not know, so a typo in a manifest fails here rather than being dropped silently.
func Apply(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured, opts ApplyOptions) error {
	if opts.FieldManager == "" {
		opts.FieldManager = DefaultFieldManager
	}
	return apply.Apply(ctx, cfg, objs, opts)
}
