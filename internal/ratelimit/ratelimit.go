// Package ratelimit is a token bucket per authenticated principal (a license on the
// lease API, a customer token on the customer API), bounded in memory.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a token bucket per authenticated principal. Callers consult it only after
// the credential was checked (lease-api.md v1.1: never keyed on an unverified token
// value), so memory is bounded by the principals that really call, and by the cap
// besides. Per replica: N replicas allow N times the rate.
type Limiter struct {
	rate  rate.Limit
	burst int
	max   int

	mu    sync.Mutex
	m     map[string]*bucket
	sweep time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

// idleBucket is how long an unused bucket is kept.
const idleBucket = 10 * time.Minute

// New returns a limiter of perSecond requests per principal with the given burst,
// remembering at most maxKeys buckets (0: 100,000); perSecond <= 0 returns nil (no
// limit; a nil *Limiter allows everything).
func New(perSecond float64, burst, maxKeys int) *Limiter {
	if perSecond <= 0 {
		return nil
	}
	if maxKeys <= 0 {
		maxKeys = 100_000
	}
	return &Limiter{rate: rate.Limit(perSecond), burst: max(burst, 1), max: maxKeys, m: map[string]*bucket{}}
}

// Wait takes one request from key's bucket; it returns 0 when the request may go on,
// or how long to wait (nothing is taken then). Buckets run on this process's clock.
func (t *Limiter) Wait(key string) time.Duration {
	if t == nil {
		return 0
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.m[key]
	if !ok {
		if len(t.m) >= t.max || now.Sub(t.sweep) > time.Minute {
			t.sweepLocked(now)
		}
		if len(t.m) >= t.max && !t.evictLocked(now) {
			// Full of buckets that are all being throttled: an attacker with many keys
			// must not be able to reset a throttled one by pushing it out, so the new
			// key waits instead (memory stays bounded, and throttling holds).
			return fullWait
		}
		b = &bucket{l: rate.NewLimiter(t.rate, t.burst)}
		t.m[key] = b
	}
	b.seen = now
	res := b.l.ReserveN(now, 1)
	delay := res.DelayFrom(now)
	if delay > 0 {
		res.CancelAt(now)
	}
	return delay
}

// Len is the number of buckets held (tests prove it stays bounded).
func (t *Limiter) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

func (t *Limiter) sweepLocked(now time.Time) {
	for k, v := range t.m {
		if now.Sub(v.seen) > idleBucket {
			delete(t.m, k)
		}
	}
	t.sweep = now
}

// fullWait is the answer to a new key while the limiter is full of throttled ones.
const fullWait = time.Minute

// evictSample bounds the search for a bucket that may be dropped.
const evictSample = 256

// evictLocked drops one bucket that is not throttling anyone (its burst is full
// again), found among a random sample; it reports whether it found one. A key in
// penalty is never dropped, so dropping can't reset a throttled principal.
func (t *Limiter) evictLocked(now time.Time) bool {
	n := 0
	for k, b := range t.m {
		if b.l.TokensAt(now) >= float64(t.burst) {
			delete(t.m, k)
			return true
		}
		if n++; n >= evictSample {
			break
		}
	}
	return false
}
