package statestore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ekslink/ekslink/statestore"
)

func Example() {
	ctx := context.Background()
	store := statestore.NewMemory() // or NewFile(path), NewSecret(clientset, namespace, name, SecretOptions{})

	v1, _ := store.Save(ctx, map[string][]byte{"instance-id": []byte("mi-0123456789abcdef0")}, "")
	_, _ = store.Save(ctx, map[string][]byte{"instance-id": []byte("mi-0fedcba9876543210")}, v1)

	// A writer still holding v1 is refused instead of silently overwriting the newer value.
	_, err := store.Save(ctx, map[string][]byte{"instance-id": []byte("mi-stale")}, v1)
	fmt.Println(errors.Is(err, statestore.ErrConflict))

	name, _ := statestore.OrdinalName(statestore.DefaultStatePrefix, "eks-connector-0")
	fmt.Println(name)
	// Output:
	// true
	// eks-connector-state-0
}
