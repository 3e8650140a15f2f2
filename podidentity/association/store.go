package association

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// maxConflictRetries bounds how often a write re-reads the ConfigMap after losing a race.
const maxConflictRetries = 8

// Store creates, lists and deletes associations in the ConfigMap. It needs get, create and update
// on that ConfigMap (create only while it does not exist yet).
type Store struct {
	client kubernetes.Interface
	opts   Options
}

// NewStore returns a Store on the ConfigMap opts names.
func NewStore(client kubernetes.Interface, opts Options) *Store {
	return &Store{client: client, opts: opts.withDefaults()}
}

// ConflictError reports a Create for a service account that already has another role. Delete the
// association first to change the role (as with EKS, one association per service account).
type ConflictError struct {
	// Existing is the association in place.
	Existing Association
}

// Error implements error.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("association: %s/%s already has role %s; delete it first to associate another role",
		e.Existing.Namespace, e.Existing.ServiceAccount, e.Existing.RoleARN)
}

// Result says what a write did.
type Result struct {
	// Changed is false when the ConfigMap already was as asked (idempotent repeat).
	Changed bool
	// ResourceVersion is the ConfigMap's resourceVersion after the write (or as read when unchanged).
	ResourceVersion string
}

// List returns the valid associations, sorted, and the entries that are not valid associations.
// A missing ConfigMap means no associations.
func (s *Store) List(ctx context.Context) ([]Association, []Problem, error) {
	cm, err := s.client.CoreV1().ConfigMaps(s.opts.Namespace).Get(ctx, s.opts.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("association: reading ConfigMap %s/%s: %w", s.opts.Namespace, s.opts.Name, err)
	}
	as, problems := Decode(cm.Data)
	return as, problems, nil
}

// Create adds the association after validating it. An existing association of the service
// account with the same role is left as it is (Changed false); one with another role is a
// *ConflictError.
func (s *Store) Create(ctx context.Context, a Association) (Result, error) {
	if err := a.Validate(); err != nil {
		return Result{}, err
	}
	return s.edit(ctx, func(data map[string]string) (bool, error) {
		if old, ok := data[a.Key()]; ok {
			existing, problems := Decode(map[string]string{a.Key(): old})
			if len(problems) == 0 && existing[0].RoleARN == a.RoleARN {
				return false, nil
			}
			if len(problems) == 0 {
				return false, &ConflictError{Existing: existing[0]}
			}
			// An invalid hand-edited entry is replaced: it is served to nobody.
		}
		data[a.Key()] = encodeValue(a)
		return true, nil
	})
}

// Delete removes the association of a service account; a missing one is not an error (Changed false).
func (s *Store) Delete(ctx context.Context, namespace, serviceAccount string) (Result, error) {
	k := Key(namespace, serviceAccount)
	return s.edit(ctx, func(data map[string]string) (bool, error) {
		if _, ok := data[k]; !ok {
			return false, nil
		}
		delete(data, k)
		return true, nil
	})
}

// edit reads the ConfigMap, applies change to its data and writes it back with the
// resourceVersion read (creating it when missing), re-reading after a conflict.
func (s *Store) edit(ctx context.Context, change func(map[string]string) (bool, error)) (Result, error) {
	cms := s.client.CoreV1().ConfigMaps(s.opts.Namespace)
	for attempt := 0; ; attempt++ {
		cm, err := cms.Get(ctx, s.opts.Name, metav1.GetOptions{})
		missing := apierrors.IsNotFound(err)
		if err != nil && !missing {
			return Result{}, fmt.Errorf("association: reading ConfigMap %s/%s: %w", s.opts.Namespace, s.opts.Name, err)
		}
		if missing {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.opts.Namespace, Name: s.opts.Name,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "ekslink"}}}
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		changed, err := change(cm.Data)
		if err != nil {
			return Result{}, err
		}
		if !changed {
			return Result{ResourceVersion: cm.ResourceVersion}, nil
		}
		var out *corev1.ConfigMap
		if missing {
			out, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		} else {
			out, err = cms.Update(ctx, cm, metav1.UpdateOptions{}) // carries cm.ResourceVersion: a precondition
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < maxConflictRetries {
			continue
		}
		if err != nil {
			return Result{}, fmt.Errorf("association: writing ConfigMap %s/%s: %w", s.opts.Namespace, s.opts.Name, err)
		}
		return Result{Changed: true, ResourceVersion: out.ResourceVersion}, nil
	}
}
