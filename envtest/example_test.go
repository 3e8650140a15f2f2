package envtest_test

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
)

// Outside a test (the demo does this), New starts a control plane the caller stops. In tests use
// Start or Shared, which also decide between failing (CI) and skipping when the binaries are missing.
// This example is compiled but not run: it needs `make testbin`.
func ExampleNew() {
	env, err := envtest.New(envtest.Options{SigningKeys: nil /* one fresh RSA key */})
	if err != nil {
		panic(err)
	}
	defer env.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// No controller manager runs: service accounts are created explicitly.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}
	if _, err := env.Client.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		panic(err)
	}
	token, err := env.TokenRequest(ctx, "default", "app", []string{"sts.amazonaws.com"}, 10*time.Minute)
	if err != nil {
		panic(err)
	}
	ns, err := env.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(token) > 0, len(ns.Items) > 0)
}
