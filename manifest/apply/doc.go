// Package apply is ekslink's one server-side apply helper: Apply writes a list of objects of any
// kind through the dynamic client (REST mapping from discovery), forcing ownership of the fields
// they set, optionally as a server-side dry run, and reports the first refusal as *Error naming
// the object.
//
// Package manifest (the workload renderer) and package impersonation/rbac (console and
// impersonation RBAC) both apply through it; their ApplyOptions and ApplyError are aliases of
// Options and Error, so errors.As with any of them matches an error from either. It is a
// sub-package rather than part of manifest because manifest imports impersonation/rbac (the
// connector's objects include the impersonation ClusterRole), so rbac cannot import manifest.
//
// The package does not render, diff or prune objects, and does not create namespaces.
package apply
