//go:build loadtest

package statestore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/statestore"
)

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// TestLoadSecretStoreVersusDirectUpdate compares a Secret store save (get, ownership merge,
// update with resourceVersion precondition) with the direct client-go get+update it replaces.
func TestLoadSecretStoreVersusDirectUpdate(t *testing.T) {
	env := envtest.Shared(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	const n = 200
	data := map[string][]byte{"registration.json": make([]byte, 4096)}

	secrets := env.Client.CoreV1().Secrets(ns)
	if _, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "direct"}, Data: data}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	direct := make([]time.Duration, n)
	startDirect := time.Now()
	for i := range n {
		t0 := time.Now()
		s, err := secrets.Get(ctx, "direct", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Data = data
		if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		direct[i] = time.Since(t0)
	}
	directTotal := time.Since(startDirect)

	store := statestore.NewSecret(env.Client, ns, "store", statestore.SecretOptions{})
	v, err := store.Save(ctx, data, "")
	if err != nil {
		t.Fatal(err)
	}
	viaStore := make([]time.Duration, n)
	startStore := time.Now()
	for i := range n {
		t0 := time.Now()
		if v, err = store.Save(ctx, data, v); err != nil {
			t.Fatal(err)
		}
		viaStore[i] = time.Since(t0)
	}
	storeTotal := time.Since(startStore)
	t.Logf("secret store save vs direct get+update: ratio=%.2f p50=%v p99=%v direct_p50=%v direct_p99=%v ops=%d",
		float64(directTotal)/float64(storeTotal), percentile(viaStore, 0.5), percentile(viaStore, 0.99),
		percentile(direct, 0.5), percentile(direct, 0.99), n)
}
