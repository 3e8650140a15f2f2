package envtest_test

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ekslink/ekslink/envtest"
)

// Start a control plane without any test framework and use the administrator rest.Config it
// returns with client-go. go test compiles this example without running it (it has no Output
// line, since an example cannot skip when the binaries are missing); TestExampleEnvironment runs
// it and checks what it prints.
func ExampleEnvironment() {
	env := &envtest.Environment{} // every field is optional
	cfg, err := env.Start()
	if err != nil {
		panic(err) // a *envtest.BinariesNotFoundError says how to get kube-apiserver and etcd
	}
	defer func() {
		if err := env.Stop(); err != nil {
			panic(err)
		}
	}()

	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// No controller manager runs: namespaces are active at once, service accounts are created
	// explicitly, and TokenRequest mints their tokens.
	ns, err := clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "example"}}, metav1.CreateOptions{})
	if err != nil {
		panic(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}
	if _, err := clientset.CoreV1().ServiceAccounts(ns.Name).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		panic(err)
	}
	token, err := env.TokenRequest(ctx, ns.Name, "app", []string{"sts.amazonaws.com"}, 10*time.Minute)
	if err != nil {
		panic(err)
	}
	fmt.Println(ns.Name, len(token) > 0) // example true
}
