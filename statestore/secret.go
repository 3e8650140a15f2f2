package statestore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Labels and annotations the Secret store puts on the Secrets it writes.
const (
	// LabelManagedBy is set to ManagedByValue.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "ekslink"
	// AnnotationOwnedKeys lists (comma-separated, sorted) the data keys this store owns. Keys not in
	// the list belong to someone else and are never changed or removed.
	AnnotationOwnedKeys = "statestore.ekslink.io/owned-keys"
	// AnnotationOwner says which program writes the owned keys.
	AnnotationOwner = "statestore.ekslink.io/owner"
)

// ErrForeignKey is matched by the error Save returns when asked to write a key that exists in the
// Secret but belongs to someone else.
var ErrForeignKey = errors.New("statestore: key owned by someone else")

// Secret is a Store backed by one Kubernetes Secret. The version is the Secret's resourceVersion and
// every write is an Update (or Create) with that precondition, so concurrent writers never lose an
// update. Only the keys it wrote are loaded, replaced or removed; other keys (and labels and
// annotations) in the same Secret are preserved.
//
// RBAC: get and update on the named Secret suffice when the Secret already exists (a resourceNames
// rule cannot grant create, so deploy an empty Secret with the manifests); create is needed only when
// the store has to create it.
type Secret struct {
	client      kubernetes.Interface
	namespace   string
	name        string
	owner       string
	labels      map[string]string
	annotations map[string]string
}

// SecretOptions configure a Secret store. The zero value is a store that labels its Secret with
// LabelManagedBy only and names itself "ekslink statestore" in AnnotationOwner.
type SecretOptions struct {
	// Labels are put on the Secret on every write, in addition to LabelManagedBy.
	Labels map[string]string
	// Annotations are put on the Secret on every write.
	Annotations map[string]string
	// Owner is the value of AnnotationOwner (default "ekslink statestore").
	Owner string
}

// NewSecret returns a Store backed by the Secret namespace/name.
func NewSecret(client kubernetes.Interface, namespace, name string, opts SecretOptions) *Secret {
	s := &Secret{
		client: client, namespace: namespace, name: name, owner: "ekslink statestore",
		labels: map[string]string{LabelManagedBy: ManagedByValue}, annotations: map[string]string{},
	}
	maps.Copy(s.labels, opts.Labels)
	maps.Copy(s.annotations, opts.Annotations)
	if opts.Owner != "" {
		s.owner = opts.Owner
	}
	return s
}

// Namespace is the Secret's namespace.
func (s *Secret) Namespace() string { return s.namespace }

// Name is the Secret's name.
func (s *Secret) Name() string { return s.name }

// String names the Secret for messages.
func (s *Secret) String() string { return "secret " + s.namespace + "/" + s.name }

func ownedKeys(sec *corev1.Secret) []string {
	v := sec.Annotations[AnnotationOwnedKeys]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// Load implements Store. An existing Secret without owned keys (for example one created empty by the
// manifests) is a document with no values.
func (s *Secret) Load(ctx context.Context) (*Document, error) {
	sec, err := s.client.CoreV1().Secrets(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("statestore: reading %s: %w", s, err)
	}
	doc := &Document{Data: map[string][]byte{}, Version: sec.ResourceVersion}
	for _, k := range ownedKeys(sec) {
		if v, ok := sec.Data[k]; ok {
			doc.Data[k] = append([]byte(nil), v...)
		}
	}
	return doc, nil
}

// Save implements Store.
func (s *Secret) Save(ctx context.Context, data map[string][]byte, version string) (string, error) {
	if err := ValidateKeys(data); err != nil {
		return "", err
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range data {
			if !yield(k) {
				return
			}
		}
	})
	secrets := s.client.CoreV1().Secrets(s.namespace)
	if version == "" {
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace, Labels: map[string]string{}, Annotations: map[string]string{}},
			Type:       corev1.SecretTypeOpaque,
			Data:       cloneData(data),
		}
		s.decorate(sec, keys)
		created, err := secrets.Create(ctx, sec, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return "", &ConflictError{Store: s.String(), Expected: version}
		}
		if err != nil {
			return "", fmt.Errorf("statestore: creating %s: %w", s, err)
		}
		return created.ResourceVersion, nil
	}
	cur, err := secrets.Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", &ConflictError{Store: s.String(), Expected: version}
	}
	if err != nil {
		return "", fmt.Errorf("statestore: reading %s: %w", s, err)
	}
	if cur.ResourceVersion != version {
		return "", &ConflictError{Store: s.String(), Expected: version, Actual: cur.ResourceVersion}
	}
	owned := ownedKeys(cur)
	for _, k := range keys {
		if _, exists := cur.Data[k]; exists && !slices.Contains(owned, k) {
			return "", fmt.Errorf("%w: %s already has key %q that this store did not write; choose another key or Secret", ErrForeignKey, s, k)
		}
	}
	next := cur.DeepCopy()
	if next.Data == nil {
		next.Data = map[string][]byte{}
	}
	for _, k := range owned {
		delete(next.Data, k)
	}
	for k, v := range data {
		next.Data[k] = append([]byte(nil), v...)
	}
	if next.Labels == nil {
		next.Labels = map[string]string{}
	}
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	s.decorate(next, keys)
	// The resourceVersion in next is the precondition: the API server refuses the update with 409
	// Conflict if anyone wrote in between.
	updated, err := secrets.Update(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return "", &ConflictError{Store: s.String(), Expected: version}
	}
	if err != nil {
		return "", fmt.Errorf("statestore: updating %s: %w", s, err)
	}
	return updated.ResourceVersion, nil
}

func (s *Secret) decorate(sec *corev1.Secret, keys []string) {
	for k, v := range s.labels {
		sec.Labels[k] = v
	}
	for k, v := range s.annotations {
		sec.Annotations[k] = v
	}
	sec.Annotations[AnnotationOwner] = s.owner
	if len(keys) == 0 {
		delete(sec.Annotations, AnnotationOwnedKeys)
	} else {
		sec.Annotations[AnnotationOwnedKeys] = strings.Join(keys, ",")
	}
}
