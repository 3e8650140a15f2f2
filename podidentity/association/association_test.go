package association_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/podidentity/association"
)

const role = "arn:aws:iam::111122223333:role/app"

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		a     association.Association
		field string
	}{
		{association.Association{"default", "app", role}, ""},
		{association.Association{"default", "app.v2", "arn:aws-cn:iam::111122223333:role/path/app"}, ""},
		{association.Association{"Default", "app", role}, "namespace"},
		{association.Association{"a.b", "app", role}, "namespace"},
		{association.Association{"default", "", role}, "serviceAccount"},
		{association.Association{"default", "App", role}, "serviceAccount"},
		{association.Association{"default", "app", ""}, "roleArn"},
		{association.Association{"default", "app", "arn:aws:iam::111122223333:user/alice"}, "roleArn"},
		{association.Association{"default", "app", "arn:aws:sts::111122223333:assumed-role/app/s"}, "roleArn"},
		{association.Association{"default", "app", "arn:aws:iam::1111:role/app"}, "roleArn"},
	} {
		err := tt.a.Validate()
		var ve *association.ValidationError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%+v: %v", tt.a, err)
		case tt.field != "" && (!errors.As(err, &ve) || ve.Field != tt.field || !errors.Is(err, association.ErrInvalid)):
			t.Errorf("%+v: got %v, want a ValidationError on %s", tt.a, err, tt.field)
		}
	}
}

func TestDecodeSkipsInvalidEntries(t *testing.T) {
	as, problems := association.Decode(map[string]string{
		"default.app":  `{"roleArn":"` + role + `"}`,
		"nodot":        `{"roleArn":"` + role + `"}`,
		"default.bad":  `{"roleArn":"arn:aws:iam::111122223333:user/alice"}`,
		"default.junk": `role`,
		"default.more": `{"roleArn":"` + role + `","extra":1}`,
	})
	if len(as) != 1 || as[0] != (association.Association{"default", "app", role}) {
		t.Fatalf("associations %+v", as)
	}
	if len(problems) != 4 {
		t.Fatalf("problems %+v", problems)
	}
}

// TestStoreAndIndexAgainstTheAPIServer runs the write and read sides on the real API server: the
// Index sees creates and deletes through its watch, writes are idempotent, a second role for a
// service account is refused, and concurrent writers all land (resourceVersion preconditions).
func TestStoreAndIndexAgainstTheAPIServer(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	opts := association.Options{Namespace: ns}
	store := association.NewStore(env.Client, opts)
	ix := association.NewIndex(env.Client, association.IndexOptions{Options: opts})
	runIndex(t, ix)

	if as, _, err := store.List(ctx); err != nil || len(as) != 0 {
		t.Fatalf("empty list: %v %v", as, err)
	}
	a := association.Association{Namespace: "team-a", ServiceAccount: "app", RoleARN: role}
	res, err := store.Create(ctx, a)
	if err != nil || !res.Changed {
		t.Fatalf("create: %+v %v", res, err)
	}
	if res2, err := store.Create(ctx, a); err != nil || res2.Changed || res2.ResourceVersion != res.ResourceVersion {
		t.Fatalf("repeated create must change nothing: %+v %v", res2, err)
	}
	other := a
	other.RoleARN = "arn:aws:iam::111122223333:role/other"
	var ce *association.ConflictError
	if _, err := store.Create(ctx, other); !errors.As(err, &ce) || ce.Existing != a {
		t.Fatalf("create with another role: %v", err)
	}
	if _, err := store.Create(ctx, association.Association{Namespace: "team-a", ServiceAccount: "x", RoleARN: "nope"}); !errors.Is(err, association.ErrInvalid) {
		t.Fatalf("invalid create: %v", err)
	}
	waitFor(t, func() bool { _, ok := ix.Lookup("team-a", "app"); return ok })
	if got, _ := ix.Lookup("team-a", "app"); got != a {
		t.Fatalf("lookup %+v", got)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := association.NewStore(env.Client, opts).Create(ctx, association.Association{Namespace: "team-b", ServiceAccount: fmt.Sprintf("sa%d", i), RoleARN: role})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	as, problems, err := store.List(ctx)
	if err != nil || len(as) != 11 || len(problems) != 0 {
		t.Fatalf("after concurrent creates: %d associations, %v, %v", len(as), problems, err)
	}
	waitFor(t, func() bool { return ix.Len() == 11 })

	if res, err := store.Delete(ctx, "team-a", "app"); err != nil || !res.Changed {
		t.Fatalf("delete: %+v %v", res, err)
	}
	if res, err := store.Delete(ctx, "team-a", "app"); err != nil || res.Changed {
		t.Fatalf("repeated delete: %+v %v", res, err)
	}
	waitFor(t, func() bool { _, ok := ix.Lookup("team-a", "app"); return !ok })
}

// TestIndexNeedsOnlyTheOneConfigMap: an agent granted get/list/watch on this ConfigMap by name
// (resourceNames), and nothing else, syncs the Index.
func TestIndexNeedsOnlyTheOneConfigMap(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	opts := association.Options{Namespace: ns, Name: "assoc"}
	if _, err := association.NewStore(env.Client, opts).Create(ctx, association.Association{Namespace: "n", ServiceAccount: "s", RoleARN: role}); err != nil {
		t.Fatal(err)
	}
	env.CreateServiceAccount(t, ns, "agent")
	env.Grant(t, ns, "agent-assoc", envtest.ServiceAccountSubject(ns, "agent"), []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"assoc"}, Verbs: []string{"get", "list", "watch"},
	}})
	agent := env.ClientForToken(t, env.Token(t, ns, "agent", nil, time.Hour))
	ix := association.NewIndex(agent, association.IndexOptions{Options: opts})
	runIndex(t, ix)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ix.WaitForSync(wctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := ix.Lookup("n", "s"); !ok {
		t.Fatal("association not found through the narrowly granted agent")
	}
}

func runIndex(t *testing.T, ix *association.Index) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ix.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIndexOnChange: OnChange gets the valid associations after every change, and an empty list
// when the ConfigMap is deleted (the webhook derives its container-credentials set from it).
func TestIndexOnChange(t *testing.T) {
	env := envtest.Shared(t)
	ctx := envtest.Context(t)
	ns := env.Namespace(t)
	opts := association.Options{Namespace: ns}
	var mu sync.Mutex
	var last []association.Association
	calls := 0
	ix := association.NewIndex(env.Client, association.IndexOptions{Options: opts, OnChange: func(as []association.Association) {
		mu.Lock()
		defer mu.Unlock()
		last, calls = as, calls+1
	}})
	runIndex(t, ix)
	seen := func(n int) bool { mu.Lock(); defer mu.Unlock(); return calls > 0 && len(last) == n }
	a := association.Association{Namespace: "team-a", ServiceAccount: "app", RoleARN: role}
	if _, err := association.NewStore(env.Client, opts).Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return seen(1) })
	mu.Lock()
	if last[0] != a {
		t.Errorf("OnChange got %+v", last)
	}
	mu.Unlock()
	if err := env.Client.CoreV1().ConfigMaps(ns).Delete(ctx, association.DefaultName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return seen(0) })
}
