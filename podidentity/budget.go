package podidentity

import (
	"context"
	"math"
	"net/netip"
	"sync"
	"time"
)

// bucket is a token bucket whose callers name a floor: a call is allowed only if the bucket keeps
// at least floor tokens after it. Callers with a lower floor can always spend what callers with a
// higher floor can, plus the capacity below that floor, which is how the node's budget reserves
// capacity for refreshes and known tokens. It runs on the real clock (the rate is a real rate).
type bucket struct {
	mu    sync.Mutex
	rate  float64 // tokens per second
	burst float64
	level float64
	last  time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), level: float64(burst), last: now}
}

func (b *bucket) refillLocked(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.level = math.Min(b.burst, b.level+d.Seconds()*b.rate)
		b.last = now
	}
}

// take spends one token if the bucket keeps at least floor afterwards; otherwise it reports how
// long it takes until it would (assuming nobody else spends).
func (b *bucket) take(now time.Time, floor float64) (bool, time.Duration) {
	ok, wait, _ := b.takeSpent(now, floor)
	return ok, wait
}

// takeSpent is take that also reports the fraction of the burst spent before this call (0: full).
func (b *bucket) takeSpent(now time.Time, floor float64) (bool, time.Duration, float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refillLocked(now)
	if b.level-1 >= floor {
		spent := 1 - b.level/b.burst
		b.level--
		return true, 0, spent
	}
	if b.rate <= 0 || floor+1 > b.burst {
		return false, time.Duration(math.MaxInt64), 1
	}
	return false, time.Duration((floor + 1 - b.level) / b.rate * float64(time.Second)), 1
}

// full reports whether the bucket has refilled completely (forgetting it loses nothing).
func (b *bucket) full(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refillLocked(now)
	return b.level >= b.burst
}

// lane is a kind of upstream call; each spends the node's budget down to its own floor.
type lane uint8

const (
	// laneKnown: a miss for a token EKS Auth accepted before, or a refresh of credentials about to
	// stop being served. It may spend the whole budget.
	laneKnown lane = iota
	// laneNew: a miss for a token never accepted yet. It leaves ReservedBurst untouched, and the
	// more of its own budget its source had spent, the more it leaves (whole tokens, up to half the
	// rest of the burst), which goes to sources that have been quiet.
	laneNew
	// laneRefresh: a refresh with time to spare. It spends only the upper half of the burst, so new
	// pods' misses win.
	laneRefresh
)

// floor is the level lane l must leave in the node's budget; spent is the fraction of its own
// budget the source of a new token has spent (laneNew only).
func (s *Server) floor(l lane, spent float64) float64 {
	switch l {
	case laneNew:
		r := float64(s.opts.ReservedBurst)
		return r + math.Round(spent*(float64(s.opts.Burst)-r)/2)
	case laneRefresh:
		return math.Max(float64(s.opts.Burst)/2, float64(s.opts.ReservedBurst))
	}
	return 0
}

// waitBudget takes one token of the node's budget in lane l, waiting up to maxWait for it.
func (s *Server) waitBudget(ctx context.Context, l lane, spent float64, maxWait time.Duration) bool {
	deadline := time.Now().Add(maxWait)
	for {
		ok, wait := s.budget.take(time.Now(), s.floor(l, spent))
		if ok {
			return true
		}
		if wait > time.Until(deadline) {
			return false
		}
		t := time.NewTimer(wait + time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
}

// maxSources bounds the per-source budgets kept; a node has at most a few hundred pod addresses.
const maxSources = 4096

// sourceBudgets are the budgets of new-token upstream calls per source, keyed by the peer address
// of the connection (the pod's IP). The token's claims are not used: they are unverified here, so a
// client could name a new pod in every token (or the victim's pod) at no cost, while a pod cannot
// choose the address its connections come from (the node routes each pod IP to that pod).
type sourceBudgets struct {
	mu    sync.Mutex
	rate  float64
	burst int
	m     map[netip.Addr]*bucket
}

func newSourceBudgets(rate float64, burst int) *sourceBudgets {
	return &sourceBudgets{rate: rate, burst: burst, m: map[netip.Addr]*bucket{}}
}

// take spends one token of src's budget, or reports how long until one is available; spent is the
// fraction of src's burst spent before this call.
func (sb *sourceBudgets) take(src netip.Addr, now time.Time) (ok bool, wait time.Duration, spent float64) {
	sb.mu.Lock()
	b := sb.m[src]
	if b == nil {
		if len(sb.m) >= maxSources {
			sb.pruneLocked(now)
		}
		b = newBucket(sb.rate, sb.burst, now)
		sb.m[src] = b
	}
	sb.mu.Unlock()
	return b.takeSpent(now, 0)
}

// pruneLocked forgets the sources whose budget refilled (a new bucket starts full, so nothing is
// lost); if every source is busy, arbitrary ones.
func (sb *sourceBudgets) pruneLocked(now time.Time) {
	for a, b := range sb.m {
		if b.full(now) {
			delete(sb.m, a)
		}
	}
	for a := range sb.m {
		if len(sb.m) < maxSources {
			break
		}
		delete(sb.m, a)
	}
}

// sourceOf is the source a request is budgeted under: its peer IP (IPv4-mapped IPv6 unmapped).
// An address that cannot be parsed is budgeted under the zero Addr, shared by all such requests.
func sourceOf(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// takeSource spends one new-token call of the budget of the client at remoteAddr and reports the
// fraction of that budget spent, or answers 429.
func (s *Server) takeSource(remoteAddr string) (float64, error) {
	src := sourceOf(remoteAddr)
	ok, wait, spent := s.sources.take(src, time.Now())
	if ok {
		return spent, nil
	}
	s.metrics.rateLimited.WithLabelValues("source").Inc()
	who := "this client"
	if src.IsValid() {
		who = src.String()
	}
	return 1, &Error{
		Status: 429, Code: CodeThrottled, RetryAfter: min(max(wait, time.Second), maxRetryAfter),
		Message: "too many new tokens from " + who + "; retry later", Err: errSourceRateLimit,
	}
}
