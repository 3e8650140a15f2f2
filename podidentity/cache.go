package podidentity

import (
	"container/heap"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// value is a cached answer, encoded once so the cached path only writes bytes.
type value struct {
	body          []byte
	contentLength string
	expires       time.Time
	fetched       time.Time
}

type dueKind uint8

const (
	dueNone dueKind = iota
	dueRefresh
	dueEvict
)

type entry struct {
	k        key
	token    string // kept in memory only, for refreshes; never logged
	claims   tokenClaims
	val      *value
	negUntil time.Time
	negErr   *Error

	lastAccess time.Time
	elem       *list.Element

	due      time.Time
	kind     dueKind
	heapIdx  int
	failures int
	// lapsed: not refreshed any more because the token was not presented for IdleTimeout.
	lapsed bool
	// verified: EKS Auth accepted the token at least once, so its claims are genuine.
	verified bool
}

// call is one upstream fetch shared by every caller of the same key.
type call struct {
	done chan struct{}
	val  *value
	err  error
	// known: the token was accepted by EKS Auth before; its miss may spend the reserved budget.
	known bool
	// spent is the fraction of its own budget the requesting source had spent (new tokens only).
	spent float64
}

type fetchKind string

const (
	kindMiss    fetchKind = "miss"
	kindRefresh fetchKind = "refresh"
)

// cache is the credential cache shared by all listeners: a map + LRU list, a timer heap of refresh
// and eviction deadlines, and the in-flight fetches. One mutex guards all of it; every critical
// section is a few map and list operations.
type cache struct {
	s *Server

	mu      sync.Mutex
	entries map[key]*entry
	lru     *list.List
	heap    entryHeap
	flights map[key]*call

	wake chan struct{}
	work chan key
}

func newCache(s *Server) *cache {
	return &cache{
		s:       s,
		entries: map[key]*entry{},
		lru:     list.New(),
		flights: map[key]*call{},
		wake:    make(chan struct{}, 1),
		work:    make(chan key, s.opts.RefreshWorkers*4),
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *cache) start() {
	c.s.wg.Add(1 + c.s.opts.RefreshWorkers)
	go c.scheduler()
	for i := 0; i < c.s.opts.RefreshWorkers; i++ {
		go c.worker()
	}
}

func (c *cache) servable(v *value, now time.Time) bool {
	return v != nil && v.expires.Sub(now) > c.s.opts.ServeSkew
}

// get answers from the cache or joins (or starts) the single upstream fetch for the token;
// remoteAddr is the client's address, whose source budget pays for a new token's fetch.
func (c *cache) get(ctx context.Context, token, remoteAddr string) (*value, error) {
	s := c.s
	k := key(sha256.Sum256([]byte(token)))
	now := s.now()
	c.mu.Lock()
	l := c.lookupLocked(k, now)
	c.mu.Unlock()
	if l.val != nil {
		s.metrics.hits.Inc()
		return l.val, nil
	}
	if l.err != nil {
		return nil, l.err
	}
	s.metrics.misses.Inc()
	fl, claims := l.flight, l.claims
	if fl == nil {
		if !l.known {
			var err error
			if claims, err = parseClaims(token, now); err != nil {
				return nil, &Error{Status: 400, Code: CodeInvalidToken, Message: err.Error()}
			}
		}
		if s.ctx.Err() != nil {
			return nil, &Error{Status: 503, Code: CodeUpstreamUnavailable, Message: "agent is shutting down"}
		}
		var spent float64
		if !l.verified {
			var err error
			if spent, err = s.takeSource(remoteAddr); err != nil {
				return nil, err
			}
		}
		c.mu.Lock()
		l = c.lookupLocked(k, now)
		fl = l.flight
		start := false
		if l.val == nil && l.err == nil && fl == nil {
			fl = &call{done: make(chan struct{}), known: l.verified, spent: spent}
			c.flights[k] = fl
			start = true
		}
		c.mu.Unlock()
		if l.val != nil {
			return l.val, nil
		}
		if l.err != nil {
			return nil, l.err
		}
		if start {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				c.fetch(k, token, claims, fl, kindMiss)
			}()
		}
	}
	select {
	case <-fl.done:
		return fl.val, fl.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lookup is the state of a key: a servable value, a cached error, or the in-flight call; known
// reports whether claims came from a cache entry (so the token need not be parsed again), verified
// whether EKS Auth accepted the token before.
type lookup struct {
	val      *value
	err      error
	flight   *call
	claims   tokenClaims
	known    bool
	verified bool
}

func (c *cache) lookupLocked(k key, now time.Time) lookup {
	e := c.entries[k]
	if e == nil {
		return lookup{flight: c.flights[k]}
	}
	if !now.Before(e.claims.Expiry.Add(tokenLeeway)) {
		return lookup{err: &Error{Status: 400, Code: CodeInvalidToken, Message: "token expired at " + e.claims.Expiry.UTC().Format(time.RFC3339)}}
	}
	if c.servable(e.val, now) {
		e.lastAccess = now
		c.lru.MoveToFront(e.elem)
		if e.lapsed {
			// Presented again after lapsing: refresh ahead again.
			c.scheduleLocked(e, now)
		}
		return lookup{val: e.val}
	}
	if now.Before(e.negUntil) && e.negErr != nil {
		return lookup{err: e.negErr}
	}
	return lookup{flight: c.flights[k], claims: e.claims, known: true, verified: e.verified}
}

// knownUntil is how long an entry outlives its servable credentials: a token EKS Auth accepted
// stays known while it is valid and in use, so that its next miss may spend the reserved budget
// (a pod whose credentials ran out during an outage is not a new token).
func (c *cache) knownUntil(e *entry) time.Time {
	if !e.verified {
		return time.Time{}
	}
	t := e.lastAccess.Add(c.s.opts.IdleTimeout)
	if e.claims.Expiry.Before(t) {
		t = e.claims.Expiry
	}
	return t
}

// refreshable: the token is still in use and valid long enough for EKS Auth to accept it.
func (c *cache) refreshable(e *entry, now time.Time) bool {
	return now.Sub(e.lastAccess) < c.s.opts.IdleTimeout && e.claims.Expiry.Sub(now) > time.Minute
}

func (c *cache) fetch(k key, token string, claims tokenClaims, fl *call, kind fetchKind) {
	s := c.s
	if kind == kindMiss {
		s.metrics.upstream.miss.Inc()
		l := laneNew
		if fl.known {
			l = laneKnown
		}
		if !s.waitBudget(s.ctx, l, fl.spent, s.opts.MissWait) {
			s.metrics.rateLimited.WithLabelValues(string(kindMiss)).Inc()
			c.finish(k, token, claims, fl, kind, nil, errLocalRateLimit)
			return
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.UpstreamTimeout)
	start := time.Now()
	out, err := s.upstream.AssumeRoleForPodIdentity(ctx, s.opts.ClusterName, token)
	cancel()
	if now := s.now(); err == nil && out != nil && !c.servable(&value{expires: out.Credentials.Expiration}, now) {
		// Expired on arrival (or within the serve skew): an upstream fault, not credentials.
		out, err = nil, &StaleCredentialsError{Expiration: out.Credentials.Expiration, Now: now, ServeSkew: s.opts.ServeSkew}
	}
	outcome := "success"
	if err != nil {
		_, outcome = s.classify(err)
	}
	s.metrics.upstreamCalls.WithLabelValues(string(kind), outcome).Inc()
	s.metrics.upstreamLatency.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	if kind == kindRefresh {
		s.metrics.renewal(err)
	}
	switch outcome {
	case "unavailable", "timeout", "invalid_answer":
		msg := err.Error()
		s.lastUpstreamErr.Store(&msg)
		if n := s.consecutiveUnavailable.Add(1); n == int64(s.opts.UnhealthyAfter) {
			s.log.Error(err, "EKS Auth unavailable; serving cached credentials only", "consecutiveFailures", n)
		}
		s.log.V(1).Info("upstream call failed", "token", tokenID(k), "kind", kind, "outcome", outcome, "error", msg)
	case "rate_limited":
	default:
		if n := s.consecutiveUnavailable.Swap(0); n >= int64(s.opts.UnhealthyAfter) {
			s.log.Info("EKS Auth reachable again", "afterFailures", n)
		}
		if err != nil {
			s.log.V(1).Info("upstream refused", "token", tokenID(k), "kind", kind, "outcome", outcome, "error", err.Error())
		}
	}
	c.finish(k, token, claims, fl, kind, out, err)
}

func (c *cache) finish(k key, token string, claims tokenClaims, fl *call, kind fetchKind, out *AssumeRoleForPodIdentityOutput, err error) {
	s := c.s
	now := s.now()
	var v *value
	if err == nil {
		v, err = encodeValue(out, now)
	}
	var perr *Error
	var outcome string
	if err != nil {
		if !errors.As(err, &perr) {
			perr, outcome = s.classify(err)
		}
	}
	c.mu.Lock()
	e := c.entries[k]
	if e != nil && (outcome == "invalid_token" || outcome == "denied" || outcome == "not_found") {
		// A definitive refusal (association deleted, access denied, token revoked) ends the cached
		// credentials at once: fail closed rather than hand out the role until they expire.
		if e.val != nil {
			s.metrics.upstream.evicted.Inc()
		}
		e.val = nil
	}
	switch {
	case v != nil:
		if e == nil && kind == kindMiss {
			e = c.insertLocked(k, token, claims, now)
		}
		if e != nil {
			e.val, e.negUntil, e.negErr, e.failures, e.verified = v, time.Time{}, nil, 0, true
			if kind == kindMiss {
				e.lastAccess = now
			}
			c.scheduleLocked(e, now)
		}
	case outcome == "throttled" || outcome == "invalid_answer" || (s.opts.RefusalTTL > 0 && (outcome == "invalid_token" || outcome == "denied" || outcome == "not_found")):
		ttl := s.opts.RefusalTTL
		if outcome == "throttled" || outcome == "invalid_answer" {
			ttl = s.opts.ThrottleTTL
			if perr.RetryAfter > ttl {
				ttl = min(perr.RetryAfter, maxRetryAfter)
			}
		}
		if e == nil && kind == kindMiss {
			e = c.insertLocked(k, token, claims, now)
		}
		if e != nil {
			e.negUntil, e.negErr = now.Add(ttl), perr
		}
		fallthrough
	default:
		if e != nil && kind == kindRefresh {
			e.failures++
		}
		if e != nil && e.heapIdx < 0 {
			c.scheduleLocked(e, now)
		}
	}
	delete(c.flights, k)
	c.mu.Unlock()
	if perr != nil {
		fl.err = perr
	} else {
		fl.val = v
	}
	close(fl.done)
}

func (c *cache) insertLocked(k key, token string, claims tokenClaims, now time.Time) *entry {
	e := &entry{k: k, token: token, claims: claims, lastAccess: now, heapIdx: -1}
	e.elem = c.lru.PushFront(e)
	c.entries[k] = e
	c.s.metrics.entries.Inc()
	for c.lru.Len() > c.s.opts.CacheSize {
		c.removeLocked(c.lru.Back().Value.(*entry))
	}
	return e
}

func (c *cache) removeLocked(e *entry) {
	if e.val != nil {
		c.s.metrics.upstream.evicted.Inc()
	}
	delete(c.entries, e.k)
	c.s.metrics.entries.Dec()
	c.lru.Remove(e.elem)
	if e.heapIdx >= 0 {
		heap.Remove(&c.heap, e.heapIdx)
	}
}

// scheduleLocked puts e on the timer heap: a refresh ahead of expiry while the token is in use, a
// retry with backoff after failed refreshes, otherwise an eviction when it stops being servable.
func (c *cache) scheduleLocked(e *entry, now time.Time) {
	o := c.s.opts
	var due time.Time
	kind := dueEvict
	switch {
	case !c.servable(e.val, now):
		due = e.negUntil
		if k := c.knownUntil(e); k.After(due) {
			due = k
		}
		if due.Before(now) {
			due = now
		}
	default:
		servableUntil := e.val.expires.Add(-o.ServeSkew)
		due = servableUntil
		e.lapsed = now.Sub(e.lastAccess) >= o.IdleTimeout
		if c.refreshable(e, now) {
			kind = dueRefresh
			if e.failures > 0 {
				backoff := min(5*time.Second<<min(e.failures-1, 10), 2*time.Minute)
				due = now.Add(jitter(backoff, 0.2))
			} else {
				life := e.val.expires.Sub(e.val.fetched)
				at := e.val.expires.Add(-o.RefreshBefore)
				if half := e.val.fetched.Add(life / 2); at.Before(half) {
					at = half
				}
				if r := e.val.fetched.Add(o.MaxRetention); o.MaxRetention > 0 && r.Before(at) {
					at = r
				}
				due = at.Add(-time.Duration(rand.Int64N(int64(min(life/10, 5*time.Minute)) + 1)))
			}
			if !due.Before(servableUntil) || !due.Before(e.claims.Expiry.Add(-time.Minute)) {
				kind, due = dueEvict, servableUntil
			}
		}
	}
	e.due, e.kind = due, kind
	if e.heapIdx >= 0 {
		heap.Fix(&c.heap, e.heapIdx)
	} else {
		heap.Push(&c.heap, e)
	}
	if e.heapIdx == 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

func jitter(d time.Duration, frac float64) time.Duration {
	return time.Duration(float64(d) * (1 - frac + 2*frac*rand.Float64()))
}

func (c *cache) scheduler() {
	s := c.s
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := s.now()
		var refresh []key
		c.mu.Lock()
		for c.heap.Len() > 0 && !c.heap[0].due.After(now) {
			e := heap.Pop(&c.heap).(*entry)
			kind := e.kind
			e.kind = dueNone
			switch {
			case !c.servable(e.val, now) && !now.Before(e.negUntil) && !now.Before(c.knownUntil(e)) && c.flights[e.k] == nil:
				c.removeLocked(e) // expired, lapsed, or a negative entry that ran out
			case !c.servable(e.val, now) && c.flights[e.k] == nil:
				// A refusal still cached, or a known token kept until knownUntil: its credentials
				// leave the cache now (upstream's "evicted"), the token stays known.
				if e.val != nil {
					s.metrics.upstream.evicted.Inc()
					e.val = nil
				}
				c.scheduleLocked(e, now)
			case c.flights[e.k] != nil:
				// The fetch in flight reschedules the entry when it finishes.
			case kind == dueRefresh && c.servable(e.val, now) && c.refreshable(e, now):
				refresh = append(refresh, e.k)
			default:
				if kind == dueRefresh {
					s.log.V(1).Info("credentials lapse: token not presented recently", "token", tokenID(e.k))
				}
				c.scheduleLocked(e, now)
			}
		}
		next := time.Hour
		if c.heap.Len() > 0 {
			next = c.heap[0].due.Sub(now)
		}
		c.mu.Unlock()
	dispatch:
		for i, k := range refresh {
			select {
			case c.work <- k:
				continue
			default:
			}
			// Workers are busy: try the rest again in about a second.
			c.mu.Lock()
			for _, k := range refresh[i:] {
				if e := c.entries[k]; e != nil && e.heapIdx < 0 {
					e.due, e.kind = now.Add(jitter(time.Second, 0.5)), dueRefresh
					heap.Push(&c.heap, e)
				}
			}
			if c.heap.Len() > 0 {
				next = min(next, c.heap[0].due.Sub(now))
			}
			c.mu.Unlock()
			break dispatch
		}
		if next < time.Millisecond {
			next = time.Millisecond
		}
		timer.Reset(next)
		select {
		case <-timer.C:
		case <-c.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-s.ctx.Done():
			return
		}
	}
}

func (c *cache) worker() {
	s := c.s
	defer s.wg.Done()
	for {
		var k key
		select {
		case <-s.ctx.Done():
			return
		case k = <-c.work:
		}
		now := s.now()
		c.mu.Lock()
		e := c.entries[k]
		if e == nil || e.val == nil || c.flights[k] != nil {
			c.mu.Unlock()
			continue
		}
		// Misses win while the refresh has time to spare; closer to the end it may spend the reserve.
		l := laneRefresh
		if e.val.expires.Sub(now)-s.opts.ServeSkew < s.opts.RefreshBefore/2 {
			l = laneKnown
		}
		if ok, _ := s.budget.take(time.Now(), s.floor(l, 0)); !ok {
			s.metrics.rateLimited.WithLabelValues(string(kindRefresh)).Inc()
			if e.heapIdx < 0 {
				e.due, e.kind = now.Add(jitter(2*time.Second, 0.5)), dueRefresh
				heap.Push(&c.heap, e)
				select {
				case c.wake <- struct{}{}:
				default:
				}
			}
			c.mu.Unlock()
			continue
		}
		fl := &call{done: make(chan struct{})}
		c.flights[k] = fl
		token, claims := e.token, e.claims
		c.mu.Unlock()
		c.fetch(k, token, claims, fl, kindRefresh)
	}
}

func encodeValue(out *AssumeRoleForPodIdentityOutput, now time.Time) (*value, error) {
	if out == nil {
		return nil, errors.New("podidentity: empty answer from EKS Auth")
	}
	cr := out.Credentials
	body, err := json.Marshal(struct {
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string `json:"SecretAccessKey"`
		Token           string `json:"Token"`
		AccountID       string `json:"AccountId"`
		Expiration      string `json:"Expiration"`
	}{cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken, accountFromARN(out.AssumedRoleUser.ARN), cr.Expiration.UTC().Format(time.RFC3339)})
	if err != nil {
		return nil, err
	}
	return &value{body: body, contentLength: strconv.Itoa(len(body)), expires: cr.Expiration, fetched: now}, nil
}

func accountFromARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" {
		return parts[4]
	}
	return ""
}

type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.heapIdx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.heapIdx = -1
	*h = old[:len(old)-1]
	return e
}
