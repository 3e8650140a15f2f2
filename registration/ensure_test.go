package registration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/ekslink/ekslink/envtest"
	"github.com/ekslink/ekslink/envtest/awstest"
	"github.com/ekslink/ekslink/statestore"
)

const (
	actA = "11111111-2222-4333-8444-555555555555"
	actB = "66666666-7777-4888-9999-000000000000"
	code = "ActivationCode0123456789"
)

// fakeSSM is a local RegisterManagedInstance endpoint that behaves like SSM for a repeated
// registration of the same fingerprint: with idempotent it returns the same instance id, otherwise
// InstanceAlreadyRegistered. It counts the distinct registrations it made.
type fakeSSM struct {
	*awstest.Server
	idempotent bool

	mu      sync.Mutex
	byFP    map[string]registered
	calls   int
	failFor int // answer InternalServerError to this many calls first
}

type registered struct {
	id, publicKey, activation string
}

func newFakeSSM(t *testing.T, idempotent bool) *fakeSSM {
	f := &fakeSSM{Server: awstest.New(t, awstest.Options{Service: "ssm", Protocol: awstest.JSON, Anonymous: true}), idempotent: idempotent, byFP: map[string]registered{}}
	f.HandleTarget("AmazonSSM.RegisterManagedInstance", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ ActivationID, ActivationCode, Fingerprint, PublicKey, PublicKeyType string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			awstest.WriteJSONError(w, 400, "ValidationException", err.Error())
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls++
		if f.failFor > 0 {
			f.failFor--
			awstest.WriteJSONError(w, 500, "InternalServerError", "try again")
			return
		}
		if prev, ok := f.byFP[in.Fingerprint]; ok {
			if f.idempotent && prev.publicKey == in.PublicKey {
				awstest.WriteJSON(w, "", map[string]string{"InstanceId": prev.id})
				return
			}
			awstest.WriteJSONError(w, 400, "InstanceAlreadyRegistered", "fingerprint registered")
			return
		}
		id := fmt.Sprintf("mi-%017d", len(f.byFP)+1)
		f.byFP[in.Fingerprint] = registered{id: id, publicKey: in.PublicKey, activation: in.ActivationID}
		awstest.WriteJSON(w, "", map[string]string{"InstanceId": id})
	})
	return f
}

func (f *fakeSSM) registrations() map[string]registered {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]registered{}
	for k, v := range f.byFP {
		out[k] = v
	}
	return out
}

func (f *fakeSSM) client(t *testing.T) *Client {
	c, err := NewFromConfig(aws.Config{Region: "us-west-2", BaseEndpoint: aws.String(f.URL), HTTPClient: f.Client()}, func(o *ClientOptions) {
		o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = DefaultMaxAttempts
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newRegistrar(t *testing.T, store statestore.Store, f *fakeSSM, act string) *Registrar {
	t.Helper()
	r, err := New(store, Activation{ID: act, Code: code}, Options{Region: "us-west-2", Client: f.client(t), PersistBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var errCrash = errors.New("injected crash")

func TestEnsureSurvivesACrashAfterEveryStep(t *testing.T) {
	for _, crashAt := range []string{"", stepPendingSaved, stepRegistered, stepPersisted, "before-vault"} {
		for _, idempotent := range []bool{true, false} {
			t.Run(fmt.Sprintf("crash %q, SSM idempotent=%v", crashAt, idempotent), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "state.json")
				crashScenario(t, func() statestore.Store { return statestore.NewFile(path) }, crashAt, idempotent)
			})
		}
	}
}

func TestEnsureSurvivesACrashWithTheSecretStore(t *testing.T) {
	env := envtest.Shared(t)
	for _, crashAt := range []string{stepPendingSaved, stepRegistered, stepPersisted} {
		t.Run(fmt.Sprintf("crash %q", crashAt), func(t *testing.T) {
			ns := env.Namespace(t)
			crashScenario(t, func() statestore.Store {
				return statestore.NewSecret(env.Client, ns, "eks-connector-state-0", statestore.SecretOptions{})
			}, crashAt, true)
		})
	}
}

// crashScenario runs Ensure in a "process" that crashes at crashAt, then in a fresh one on the same
// durable state, and checks SSM saw one registration and state, SSM and vault agree.
func crashScenario(t *testing.T, newStore func() statestore.Store, crashAt string, idempotent bool) {
	ctx := context.Background()
	f := newFakeSSM(t, idempotent)
	vault := filepath.Join(t.TempDir(), "Vault")

	// First process: crashes at the step (nothing after it runs).
	r := newRegistrar(t, newStore(), f, actA)
	r.crash = func(step string) error {
		if step == crashAt {
			return errCrash
		}
		return nil
	}
	st, err := r.Ensure(ctx)
	if crashAt != "" && crashAt != "before-vault" {
		if !errors.Is(err, errCrash) {
			t.Fatalf("first run: %v", err)
		}
	} else if err != nil {
		t.Fatal(err)
	} else if crashAt == "" {
		if err := WriteVault(ctx, vault, st, VaultOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// Second process: a fresh store handle on the same durable state.
	st, err = newRegistrar(t, newStore(), f, actA).Ensure(ctx)
	if crashAt == stepRegistered && !idempotent {
		// SSM refuses the same material again: Ensure must report it, not register new material.
		if !errors.Is(err, ErrInstanceAlreadyRegistered) {
			t.Fatalf("restart after lost instance id: got %v, want ErrInstanceAlreadyRegistered", err)
		}
		if n := len(f.registrations()); n != 1 {
			t.Fatalf("%d registrations, want 1", n)
		}
		return
	}
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := WriteVault(ctx, vault, st, VaultOptions{}); err != nil {
		t.Fatal(err)
	}

	regs := f.registrations()
	if len(regs) != 1 {
		t.Fatalf("SSM has %d registrations, want exactly 1: %v", len(regs), regs)
	}
	reg := regs[st.Fingerprint]
	if reg.id == "" || reg.id != st.InstanceID || reg.publicKey != st.Key.PublicKey {
		t.Fatalf("state (%s, %s) does not match SSM's registration %+v", st.InstanceID, st.Fingerprint, reg)
	}
	v, err := ReadVault(vault)
	if err != nil {
		t.Fatal(err)
	}
	if v.RegistrationKey.InstanceID != st.InstanceID || v.RegistrationKey.PrivateKey != st.Key.PrivateKey || v.InstanceFingerprint.Fingerprint != st.Fingerprint {
		t.Fatal("vault does not match the state")
	}
	stored, _, err := LoadState(ctx, newStore())
	if err != nil || !stored.Registered() || stored.InstanceID != st.InstanceID {
		t.Fatalf("stored state %+v, %v", stored, err)
	}
	// A third start does not call SSM at all.
	f.mu.Lock()
	before := f.calls
	f.mu.Unlock()
	if _, err := newRegistrar(t, newStore(), f, actA).Ensure(ctx); err != nil {
		t.Fatalf("third start: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls != before {
		t.Fatalf("third start made %d SSM calls", f.calls-before)
	}
}

// failingStore fails Save while fail() says so, to emulate an API server outage after SSM answered.
type failingStore struct {
	statestore.Store
	mu    sync.Mutex
	fails int
}

func (s *failingStore) Save(ctx context.Context, data map[string][]byte, version string) (string, error) {
	s.mu.Lock()
	if s.fails > 0 {
		s.fails--
		s.mu.Unlock()
		return "", errors.New("connection refused")
	}
	s.mu.Unlock()
	return s.Store.Save(ctx, data, version)
}

func TestMain(m *testing.M) { envtest.Main(m) }

func TestEnsureRetriesRecordingTheInstanceID(t *testing.T) {
	ctx := context.Background()
	f := newFakeSSM(t, true)
	store := &failingStore{Store: statestore.NewMemory()}
	r := newRegistrar(t, store, f, actA)
	r.crash = func(step string) error {
		if step == stepRegistered {
			store.mu.Lock()
			store.fails = 3
			store.mu.Unlock()
		}
		return nil
	}
	st, err := r.Ensure(ctx)
	if err != nil || !st.Registered() {
		t.Fatalf("Ensure = %+v, %v", st, err)
	}
	if f.calls != 1 {
		t.Fatalf("%d SSM calls, want 1", f.calls)
	}
}

func TestEnsureRecordsTheOldRegistrationAsOrphanOnActivationChange(t *testing.T) {
	ctx := context.Background()
	f := newFakeSSM(t, true)
	store := statestore.NewMemory()
	first, err := newRegistrar(t, store, f, actA).Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := newRegistrar(t, store, f, actB).Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second.InstanceID == first.InstanceID || second.ActivationID != actB || second.Fingerprint == first.Fingerprint || second.Key.PrivateKey == first.Key.PrivateKey {
		t.Fatal("a new activation id must get a new registration with new material")
	}
	if len(second.Orphans) != 1 || second.Orphans[0].InstanceID != first.InstanceID || second.Orphans[0].ActivationID != actA {
		t.Fatalf("orphans %+v, want the previous instance %s", second.Orphans, first.InstanceID)
	}
}

func TestEnsureKeepsPendingStateOnFinalErrors(t *testing.T) {
	ctx := context.Background()
	s := awstest.New(t, awstest.Options{Service: "ssm", Protocol: awstest.JSON, Anonymous: true})
	s.HandleTarget("AmazonSSM.RegisterManagedInstance", func(w http.ResponseWriter, r *http.Request) {
		awstest.WriteJSONError(w, 400, "ActivationExpired", "expired")
	})
	c, _ := NewFromConfig(aws.Config{Region: "us-west-2", BaseEndpoint: aws.String(s.URL), HTTPClient: s.Client()})
	store := statestore.NewMemory()
	r, _ := New(store, Activation{ID: actA, Code: code}, Options{Region: "us-west-2", Client: c})
	if _, err := r.Ensure(ctx); !errors.Is(err, ErrActivationExpired) {
		t.Fatalf("got %v", err)
	}
	st, _, _ := LoadState(ctx, store)
	if st == nil || st.Status != StatusPending {
		t.Fatalf("state %+v, want pending", st)
	}
	if len(s.Requests()) != 1 {
		t.Fatalf("%d attempts for a final error", len(s.Requests()))
	}
}

func TestConcurrentEnsureRegistersOnce(t *testing.T) {
	ctx := context.Background()
	f := newFakeSSM(t, true)
	store := statestore.NewMemory()
	var wg sync.WaitGroup
	ids := make([]string, 4)
	errs := make([]error, 4)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := newRegistrar(t, store, f, actA).Ensure(ctx)
			errs[i] = err
			if err == nil {
				ids[i] = st.InstanceID
			}
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("run %d: %q, %v (first %q)", i, ids[i], errs[i], ids[0])
		}
	}
	if n := len(f.registrations()); n != 1 {
		t.Fatalf("%d registrations", n)
	}
}

func TestCorruptStateIsNotOverwritten(t *testing.T) {
	ctx := context.Background()
	store := statestore.NewMemory()
	if _, err := store.Save(ctx, map[string][]byte{StateKey: []byte("{not json")}, ""); err != nil {
		t.Fatal(err)
	}
	f := newFakeSSM(t, true)
	if _, err := newRegistrar(t, store, f, actA).Ensure(ctx); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("got %v", err)
	}
	if f.calls != 0 {
		t.Fatal("SSM called over a corrupt state")
	}
}
