package leases

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a token bucket per authenticated license (all hosts of one license share
// it, so the rate must cover a fleet's renewals). It is consulted only after the
// lease token has been checked against the license in the database, so an unverified
// token value never makes a bucket: memory is bounded by the licenses that really
// renew, and by MaxLicenses besides. Per replica: N replicas allow N times the rate.
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

// NewLimiter returns a limiter of perSecond requests per license with the given burst,
// remembering at most maxLicenses buckets; perSecond <= 0 returns nil (no limit).
func NewLimiter(perSecond float64, burst, maxLicenses int) *Limiter {
	if perSecond <= 0 {
		return nil
	}
	if maxLicenses <= 0 {
		maxLicenses = 100_000
	}
	return &Limiter{rate: rate.Limit(perSecond), burst: max(burst, 1), max: maxLicenses, m: map[string]*bucket{}}
}

// Wait takes one request from the license's bucket at now; it returns 0 when the
// request may go on, or how long to wait (nothing is taken then).
func (t *Limiter) Wait(licenseID string, now time.Time) time.Duration {
	if t == nil {
		return 0
	}
	// The database clock decides leases, but buckets run on this process's clock:
	// the two agree to within the skew that rate limiting cares about.
	now = time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.m[licenseID]
	if !ok {
		if len(t.m) >= t.max || now.Sub(t.sweep) > time.Minute {
			t.sweepLocked(now)
		}
		if len(t.m) >= t.max {
			// Still full of live buckets: drop one (map order is random). A license
			// that loses its bucket starts again with a full burst, which errs towards
			// serving, never towards unbounded memory.
			for k := range t.m {
				delete(t.m, k)
				break
			}
		}
		b = &bucket{l: rate.NewLimiter(t.rate, t.burst)}
		t.m[licenseID] = b
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
