package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ekslink/ekslink/statestore"
)

// Options tune Run.
type Options struct {
	// Writers and Increments size the concurrency test (defaults 8 and 5).
	Writers, Increments int
}

// Run runs the conformance suite. newStore must return a fresh, empty store on every call (a
// document that does not exist yet).
func Run(t *testing.T, newStore func(t *testing.T) statestore.Store, opts Options) {
	if opts.Writers == 0 {
		opts.Writers = 8
	}
	if opts.Increments == 0 {
		opts.Increments = 5
	}
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return c
	}

	t.Run("absent document is ErrNotFound", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Load(ctx(t)); !errors.Is(err, statestore.ErrNotFound) {
			t.Fatalf("Load on a new store: got %v, want ErrNotFound", err)
		}
	})

	t.Run("create then load round-trips values", func(t *testing.T) {
		s := newStore(t)
		data := map[string][]byte{"a": []byte("alpha"), "bin.key": {0, 1, 2, 255}, "json": []byte(`{"x":1}`)}
		v, err := s.Save(ctx(t), data, "")
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if v == "" {
			t.Fatal("create returned an empty version")
		}
		doc, err := s.Load(ctx(t))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if doc.Version != v {
			t.Fatalf("Load version %q, Save returned %q", doc.Version, v)
		}
		assertData(t, doc.Data, data)
	})

	t.Run("create of an existing document conflicts", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Save(ctx(t), map[string][]byte{"a": []byte("1")}, ""); err != nil {
			t.Fatal(err)
		}
		_, err := s.Save(ctx(t), map[string][]byte{"a": []byte("2")}, "")
		var ce *statestore.ConflictError
		if !errors.Is(err, statestore.ErrConflict) || !errors.As(err, &ce) {
			t.Fatalf("second create: got %v, want a *ConflictError", err)
		}
		doc, err := s.Load(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		assertData(t, doc.Data, map[string][]byte{"a": []byte("1")})
	})

	t.Run("save against a stale version conflicts and writes nothing", func(t *testing.T) {
		s := newStore(t)
		v1, err := s.Save(ctx(t), map[string][]byte{"a": []byte("1")}, "")
		if err != nil {
			t.Fatal(err)
		}
		v2, err := s.Save(ctx(t), map[string][]byte{"a": []byte("2")}, v1)
		if err != nil {
			t.Fatalf("save against current version: %v", err)
		}
		if v2 == v1 {
			t.Fatalf("version did not change on save (%q)", v2)
		}
		if _, err := s.Save(ctx(t), map[string][]byte{"a": []byte("3")}, v1); !errors.Is(err, statestore.ErrConflict) {
			t.Fatalf("save against stale version: got %v, want ErrConflict", err)
		}
		if _, err := s.Save(ctx(t), map[string][]byte{"a": []byte("4")}, "not-a-version"); !errors.Is(err, statestore.ErrConflict) {
			t.Fatalf("save against a made-up version: got %v, want ErrConflict", err)
		}
		doc, err := s.Load(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if doc.Version != v2 {
			t.Fatalf("version %q after failed saves, want %q", doc.Version, v2)
		}
		assertData(t, doc.Data, map[string][]byte{"a": []byte("2")})
	})

	t.Run("save against a version of an absent document conflicts", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Save(ctx(t), map[string][]byte{"a": []byte("1")}, "1"); !errors.Is(err, statestore.ErrConflict) {
			t.Fatalf("got %v, want ErrConflict", err)
		}
	})

	t.Run("keys left out of a save are removed", func(t *testing.T) {
		s := newStore(t)
		v, err := s.Save(ctx(t), map[string][]byte{"keep": []byte("k"), "drop": []byte("d")}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Save(ctx(t), map[string][]byte{"keep": []byte("k2")}, v); err != nil {
			t.Fatal(err)
		}
		doc, err := s.Load(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		assertData(t, doc.Data, map[string][]byte{"keep": []byte("k2")})
	})

	t.Run("loaded documents are copies", func(t *testing.T) {
		s := newStore(t)
		in := map[string][]byte{"a": []byte("orig")}
		if _, err := s.Save(ctx(t), in, ""); err != nil {
			t.Fatal(err)
		}
		in["a"][0] = 'X'
		doc, err := s.Load(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		doc.Data["a"][0] = 'Y'
		doc.Data["b"] = []byte("new")
		again, err := s.Load(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		assertData(t, again.Data, map[string][]byte{"a": []byte("orig")})
	})

	t.Run("invalid keys are rejected", func(t *testing.T) {
		s := newStore(t)
		for _, k := range []string{"", "a/b", "sp ace", "ü"} {
			if _, err := s.Save(ctx(t), map[string][]byte{k: []byte("x")}, ""); err == nil {
				t.Errorf("key %q accepted", k)
			}
		}
	})

	t.Run("concurrent read-modify-write loses no update", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Save(ctx(t), map[string][]byte{"n": []byte("0")}, ""); err != nil {
			t.Fatal(err)
		}
		c := ctx(t)
		var wg sync.WaitGroup
		errs := make(chan error, opts.Writers)
		for w := range opts.Writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range opts.Increments {
					_, err := statestore.Update(c, s, func(d *statestore.Document) error {
						n, err := strconv.Atoi(string(d.Data["n"]))
						if err != nil {
							return err
						}
						d.Data["n"] = []byte(strconv.Itoa(n + 1))
						d.Data[fmt.Sprintf("w%d", w)] = []byte("seen")
						return nil
					}, statestore.UpdateOptions{MaxAttempts: -1, Backoff: func(int) time.Duration { return time.Millisecond }})
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("writer: %v", err)
		}
		doc, err := s.Load(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(doc.Data["n"]), strconv.Itoa(opts.Writers*opts.Increments); got != want {
			t.Fatalf("counter = %s after %d writers x %d increments, want %s (lost updates)", got, opts.Writers, opts.Increments, want)
		}
		for w := range opts.Writers {
			if string(doc.Data[fmt.Sprintf("w%d", w)]) != "seen" {
				t.Errorf("writer %d's key lost", w)
			}
		}
	})

	t.Run("cancelled context fails", func(t *testing.T) {
		s := newStore(t)
		c, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Save(c, map[string][]byte{"a": nil}, ""); err == nil {
			t.Fatal("Save with a cancelled context succeeded")
		}
	})
}

func assertData(t *testing.T, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("data has %d keys %v, want %d keys %v", len(got), keys(got), len(want), keys(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || !bytes.Equal(g, w) {
			t.Fatalf("data[%q] = %q (present %v), want %q", k, g, ok, w)
		}
	}
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
