package issuance

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

// signInThrottle slows password guessing, per account and per client address: after
// a few failures each further attempt must wait longer (1 s, 2 s, 4 s … up to 15
// minutes), answered at once with 429 and Retry-After (nothing sleeps on the server).
// A success clears the account's count. Memory is bounded: at most maxKeys entries,
// idle ones swept. Password checks (argon2id, 19 MiB each) run at most hashSlots at a
// time, so a burst of attempts can't exhaust memory; the rest wait briefly, then get
// 503.
type signInThrottle struct {
	mu    sync.Mutex
	m     map[string]*failures
	sweep time.Time
	slots chan struct{}
	// full is when a failure last found the table full of keys in penalty: until a
	// minute after, unknown keys wait too (an attacker can't make room by flooding).
	full time.Time
}

type failures struct {
	n     int
	until time.Time
	seen  time.Time
}

const (
	maxDelay  = 15 * time.Minute // the longest wait
	maxKeys   = 100_000
	hashSlots = 4 // concurrent argon2id checks
)

// freeFailures is how many failures a key may have before waits start, by the kind
// of key: an account from one address ("pair:") and one address over any accounts
// ("addr:") are throttled soon; an account from every address together ("acct:") only
// far above that, so one address can't lock the owner out from elsewhere, while a
// distributed guess of one password is still bounded.
var freeFailures = map[string]int{"pair": 3, "addr": 10, "acct": 100}

func freeFor(key string) int {
	kind, _, _ := strings.Cut(key, ":")
	if n, ok := freeFailures[kind]; ok {
		return n
	}
	return 3
}

func newSignInThrottle() *signInThrottle {
	return &signInThrottle{m: map[string]*failures{}, slots: make(chan struct{}, hashSlots)}
}

// wait returns how long the caller must still wait before another attempt for any of
// the keys (0: go on).
func (t *signInThrottle) wait(keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	var w time.Duration
	for _, k := range keys {
		if f, ok := t.m[k]; ok && f.until.After(now) {
			w = max(w, f.until.Sub(now))
		} else if !ok && now.Sub(t.full) < time.Minute {
			w = max(w, time.Minute-now.Sub(t.full))
		}
	}
	return w
}

// fail counts a failure for each key and sets its next allowed time; it returns the
// first key's count (what the audit trail aggregates by).
func (t *signInThrottle) fail(keys ...string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if len(t.m) >= maxKeys || now.Sub(t.sweep) > time.Minute {
		for k, f := range t.m {
			if now.Sub(f.seen) > time.Hour && f.until.Before(now) {
				delete(t.m, k)
			}
		}
		t.sweep = now
		for k, f := range t.m { // still full: drop keys not in penalty, never one that is
			if len(t.m) < maxKeys {
				break
			}
			if !f.until.After(now) {
				delete(t.m, k)
			}
		}
	}
	for _, k := range keys {
		f, ok := t.m[k]
		if !ok {
			if len(t.m) >= maxKeys {
				t.full = now // every key is in penalty: wait below refuses new ones
				continue
			}
			f = &failures{}
			t.m[k] = f
		}
		f.n++
		f.seen = now
		if free := freeFor(k); f.n > free {
			d := time.Second << min(f.n-free-1, 20)
			f.until = now.Add(min(d, maxDelay))
		}
	}
	if f, ok := t.m[keys[0]]; ok {
		return f.n
	}
	return 0
}

// succeed clears a key (the account, after a correct password).
func (t *signInThrottle) succeed(key string) {
	t.mu.Lock()
	delete(t.m, key)
	t.mu.Unlock()
}

// hashing runs fn in one of the password-check slots, waiting up to 5 s for one.
func (t *signInThrottle) hashing(ctx context.Context, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return entitlements.Errorf(entitlements.EUNAVAILABLE, "too many sign-ins at once: try again in a moment")
	}
	defer func() { <-t.slots }()
	return fn()
}

// tooFast is the answer while a key must wait.
func tooFast(wait time.Duration) error {
	return entitlements.RateLimited(wait, "too many failed sign-ins: wait before trying again")
}
