package podidentity

import (
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// The source of a request is its peer IP: one spelling per address (IPv4-mapped IPv6 and zones
// folded), and requests with an address that cannot be parsed share one budget.
func TestSourceIsThePeerAddress(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.1.5:43210":           "10.0.1.5",
		"[::ffff:10.0.1.5]:43210":  "10.0.1.5",
		"[2600:1f14::1a]:80":       "2600:1f14::1a",
		"[fe80::1%eth0]:80":        "fe80::1",
		"not-an-address":           "invalid IP",
		"":                         "invalid IP",
		"169.254.170.23:80":        "169.254.170.23",
		"[fd00:ec2:0:0::23]:12345": "fd00:ec2::23",
	} {
		if got := sourceOf(in).String(); got != want {
			t.Errorf("sourceOf(%q) = %s, want %s", in, got, want)
		}
	}
}

// The per-source table stays bounded: at maxSources, sources whose budget refilled are forgotten
// first (a new bucket starts full, so nothing is lost), then arbitrary ones.
func TestSourceBudgetsStayBounded(t *testing.T) {
	now := time.Now()
	sb := newSourceBudgets(1, 2)
	addr := func(i int) netip.Addr {
		return netip.MustParseAddr("10.1." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256))
	}
	for i := range maxSources {
		if ok, _, _ := sb.take(addr(i), now); !ok {
			t.Fatalf("source %d refused its first token", i)
		}
	}
	busy := addr(0)
	sb.take(busy, now) // busy has spent its whole burst
	later := now.Add(1500 * time.Millisecond)
	if ok, _, _ := sb.take(addr(maxSources), later); !ok {
		t.Fatal("new source refused")
	}
	if n := len(sb.m); n > maxSources {
		t.Fatalf("%d sources kept, the bound is %d", n, maxSources)
	}
	if _, kept := sb.m[busy]; !kept {
		t.Fatal("a source that had not refilled was forgotten while full ones were available")
	}
	if n := len(sb.m); n != 2 {
		t.Fatalf("%d sources kept, want the busy one and the new one", n)
	}
}

// take answers how long until a token is available above the floor, and nothing is spent when it
// refuses.
func TestBucketFloorAndWait(t *testing.T) {
	now := time.Now()
	b := newBucket(2, 4, now)
	for i := range 2 {
		if ok, _ := b.take(now, 2); !ok {
			t.Fatalf("take %d above floor 2 refused", i)
		}
	}
	ok, wait := b.take(now, 2)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("at the floor: ok=%v wait=%s, want refused with 500ms", ok, wait)
	}
	if ok, _ := b.take(now, 0); !ok {
		t.Fatal("a lower floor could not spend what is below a higher one")
	}
	if ok, _ := b.take(now.Add(500*time.Millisecond), 2); ok {
		t.Fatal("level 1 + 1 refilled must not pass floor 2")
	}
	if ok, wait := b.take(now, 4); ok || wait != time.Duration(1<<63-1) {
		t.Fatalf("a floor at the burst can never pass: ok=%v wait=%s", ok, wait)
	}
}
