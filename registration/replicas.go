package registration

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ekslink/ekslink/statestore"
)

// Replica is one connector replica's durable registration record: its state Secret and what it
// holds (State nil when the replica has not registered yet).
type Replica struct {
	// Secret is the state Secret's name.
	Secret string `json:"secret"`
	// State is the registration recorded there, nil when none.
	State *State `json:"-"`
	// Store is where State lives (set by LoadReplicas). With a Store, CleanupOrphans removes the
	// orphans it deregistered from the recorded list; without one the record stays.
	Store statestore.Store `json:"-"`
}

// LoadReplicas reads the registration state of every state Secret of a connector: the Secrets in
// namespace named <prefix>-<ordinal> (manifest.StateSecretNames), in ordinal order.
func LoadReplicas(ctx context.Context, client kubernetes.Interface, namespace, prefix string) ([]Replica, error) {
	list, err := client.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("registration: listing the state Secrets in %s: %w", namespace, err)
	}
	var names []string
	for _, s := range list.Items {
		if ord, ok := strings.CutPrefix(s.Name, prefix+"-"); ok && ord != "" && strings.Trim(ord, "0123456789") == "" {
			names = append(names, s.Name)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
	out := make([]Replica, 0, len(names))
	for _, n := range names {
		store := statestore.NewSecret(client, namespace, n, statestore.SecretOptions{})
		st, _, err := LoadState(ctx, store)
		if err != nil {
			return nil, fmt.Errorf("registration: state Secret %s/%s: %w", namespace, n, err)
		}
		out = append(out, Replica{Secret: n, State: st, Store: store})
	}
	return out, nil
}

// ownedInstances are the instance ids the replicas' states hold.
func ownedInstances(replicas []Replica) map[string]string {
	out := map[string]string{}
	for _, r := range replicas {
		if r.State.Registered() {
			out[r.State.InstanceID] = r.Secret
		}
	}
	return out
}

// recordedOrphans are the orphaned instance ids the replicas' states record (those with an id),
// minus any a replica owns.
func recordedOrphans(replicas []Replica) []string {
	owned := ownedInstances(replicas)
	var out []string
	for _, r := range replicas {
		if r.State == nil {
			continue
		}
		for _, o := range r.State.Orphans {
			if o.InstanceID != "" && owned[o.InstanceID] == "" && !slices.Contains(out, o.InstanceID) {
				out = append(out, o.InstanceID)
			}
		}
	}
	return out
}

// pruneOrphans removes the given instance ids from the orphans each replica's state records, with
// a load-modify-save loop (the replica may write its state at the same time).
func pruneOrphans(ctx context.Context, replicas []Replica, done []string) error {
	for _, r := range replicas {
		if r.Store == nil || r.State == nil || !slices.ContainsFunc(r.State.Orphans, func(o Orphan) bool { return slices.Contains(done, o.InstanceID) }) {
			continue
		}
		_, err := statestore.Update(ctx, r.Store, func(doc *statestore.Document) error {
			st, err := decodeState(doc)
			if err != nil {
				return err
			}
			if st == nil {
				return statestore.ErrNoChange
			}
			n := len(st.Orphans)
			st.Orphans = slices.DeleteFunc(st.Orphans, func(o Orphan) bool { return o.InstanceID != "" && slices.Contains(done, o.InstanceID) })
			if len(st.Orphans) == n {
				return statestore.ErrNoChange
			}
			return encodeState(doc, st)
		}, statestore.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("registration: removing deregistered orphans from %s: %w", r.Secret, err)
		}
	}
	return nil
}
