package demo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Ctrl-C cancels the demo's context; a wait for a process that never becomes ready must end then,
// not when its own timeout passes, so the demo cleans up at once.
func TestWaitForEndsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := waitFor(ctx, nil, time.Minute, "something that never happens", func() error { return errors.New("not yet") })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("waitFor = %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Fatalf("waitFor returned after %s, long after the context ended", elapsed)
	}
}

func TestWaitForTimesOutWithTheLastError(t *testing.T) {
	err := waitFor(context.Background(), nil, 200*time.Millisecond, "the thing", func() error { return errors.New("still booting") })
	if err == nil || !strings.Contains(err.Error(), "still booting") || !strings.Contains(err.Error(), "the thing") {
		t.Fatalf("waitFor = %v, want a timeout naming the thing and the last error", err)
	}
}

// The OIDC step's tampered token must differ from the real one whatever the payload holds (the
// former suffix rewrite to "AA" was a no-op for payloads already ending in "AA").
func TestTamperPayloadAlwaysChangesTheToken(t *testing.T) {
	for _, tok := range []string{"h.eyJzdWIiOiJ4In0AA.s", "h.AAAA.s", "h.BBBB.s", "h.A.s"} {
		got := tamperPayload(tok)
		if got == tok {
			t.Fatalf("tamperPayload(%q) returned the token unchanged", tok)
		}
		if strings.Count(got, ".") != 2 || !strings.HasPrefix(got, "h.") || !strings.HasSuffix(got, ".s") {
			t.Fatalf("tamperPayload(%q) = %q, want only the payload changed", tok, got)
		}
	}
}
