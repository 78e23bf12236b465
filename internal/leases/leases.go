// Package leases serves the online lease API of docs/spec/lease-api.md: router
// hosts of lease-required licenses renew a short-lived signed lease. It is the
// issuer's hottest path, so requests are group-committed: whatever arrives while a
// batch is being written forms the next batch, decided in one transaction and made
// durable by one commit. Each request still costs one signature and one small
// indexed write, and none is answered before its row is committed.
//
// Signing: one lease of each batch is signed before the commit, as a canary (a lease
// key that can't sign, say an HSM that went away, rolls the batch back and leaves no
// rows); the rest are signed after the commit, by each request's own goroutine, in
// parallel and outside the license locks. No lease leaves before its row is durable.
// If a signature still fails after the commit, that host gets a 500 and a row says
// its slot was granted; its retry renews that slot.
package leases

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/batcher"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/ratelimit"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/verify"
)

// Store is the storage the lease path needs.
type Store interface {
	GrantLeases(ctx context.Context, reqs []entitlements.LeaseRequest, rules entitlements.LeaseRules, precommit func([]entitlements.LeaseDecision) error) ([]entitlements.LeaseDecision, error)
	ReleaseLease(ctx context.Context, tokenHash []byte, leaseID string, admit func(licenseID string) time.Duration) (*entitlements.ReleaseResult, error)
}

var _ Store = (*storage.Store)(nil)

// Signers hands out a product's active lease signing key.
type Signers interface {
	LeaseSigner(ctx context.Context, product string) (signing.Signer, error)
}

// Lease is a granted lease: the signed file, exactly the response body.
type Lease struct {
	LeaseID   string
	LicenseID string
	Renewed   bool
	ExpiresAt time.Time
	File      []byte
}

// Options tune the batcher.
type Options struct {
	// MaxBatch caps the requests decided in one transaction (default 256).
	MaxBatch int
	// Workers is how many batches may be in flight at once (default 4). Renewal
	// batches of one license hold its lock shared and overlap; a batch in which a
	// host may take a new slot holds it exclusive.
	Workers int
	// Products are the products whose lease keys are kept ready.
	Products []string
	// ObserveBatch, when set, is told each batch's size (a metrics histogram).
	ObserveBatch func(n int)
	// Limiter is the rate limit per authenticated license (nil: none).
	Limiter *ratelimit.Limiter
	// Deadline is the deadline of a request whose context has none (default 2s).
	Deadline time.Duration
}

// Service grants and releases leases.
type Service struct {
	store   Store
	signers Signers
	opts    Options
	batches *batcher.Batcher[entitlements.LeaseRequest, result]

	// hints remembers, per host, until when this replica last saw its slot live: a
	// request from a host with a live slot is expected to be a renewal and goes into
	// a batch that locks its license shared. A wrong hint costs one retry.
	hintMu    sync.Mutex
	hints     map[slotKey]time.Time
	hintSweep time.Time

	mu     sync.Mutex
	keys   map[string]signing.Signer
	keysAt time.Time

	rules Rules
}

type slotKey struct{ license, fingerprint string }

// hintMargin: a slot is expected to still be live when its last known expiry is at
// least this far ahead (clock skew between replicas and the database).
const hintMargin = 30 * time.Second

func (s *Service) expectRenewal(k slotKey) bool {
	s.hintMu.Lock()
	defer s.hintMu.Unlock()
	exp, ok := s.hints[k]
	return ok && time.Until(exp) > hintMargin
}

func (s *Service) remember(k slotKey, d *entitlements.LeaseDecision) {
	s.hintMu.Lock()
	defer s.hintMu.Unlock()
	if d.Granted() {
		s.hints[k] = d.ExpiresAt
	} else {
		delete(s.hints, k)
	}
	if now := time.Now(); now.Sub(s.hintSweep) > time.Minute {
		for k, exp := range s.hints {
			if exp.Before(now) {
				delete(s.hints, k)
			}
		}
		s.hintSweep = now
	}
}

type result struct {
	d    entitlements.LeaseDecision
	key  signing.Signer // signs d after the commit
	file []byte         // already signed (the batch's canary)
}

// job is one lease request in its batch.
type job = batcher.Job[entitlements.LeaseRequest, result]

// New makes a lease service; Run must be running for Grant to answer.
func New(store Store, signers Signers, o Options) *Service {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Deadline <= 0 {
		o.Deadline = 2 * time.Second
	}
	s := &Service{store: store, signers: signers, opts: o, hints: map[slotKey]time.Time{},
		rules: Rules{Admit: func(lic string, _ time.Time) time.Duration { return o.Limiter.Wait(lic) }}}
	s.batches = batcher.New(batcher.Options[entitlements.LeaseRequest]{MaxBatch: o.MaxBatch, Workers: o.Workers, Deadline: o.Deadline,
		TooLate: errTooLate, OutcomeUnknown: errOutcomeUnknown, Unavailable: unavailable}, s.decide)
	return s
}

// Run decides queued requests in batches until ctx ends.
func (s *Service) Run(ctx context.Context) { s.batches.Run(ctx) }

// keyRefresh is how long lease signers are kept before the active keys are looked
// up again. It is only a cache: every batch reads the product's usable active lease
// key from the database under its own clock, and a cached signer that is not that
// key (rotated, retired, past its not_after) is never used: the batch rolls back and
// the keys are looked up again at once.
const keyRefresh = 10 * time.Second

// errStaleKey: the cached signer of a product is not the key the database says may
// sign now.
var errStaleKey = errors.New("leases: cached lease key is no longer the usable active key")

// signers returns the lease keys of every product, looked up outside any
// transaction (a lookup inside one could wait on a pool connection it is holding).
func (s *Service) signerSet(ctx context.Context, fresh bool) (map[string]signing.Signer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys != nil && !fresh && time.Since(s.keysAt) < keyRefresh {
		return s.keys, nil
	}
	keys := map[string]signing.Signer{}
	for _, p := range s.opts.Products {
		k, err := s.signers.LeaseSigner(ctx, p)
		if entitlements.ErrorCode(err) == entitlements.ECONFLICT || entitlements.ErrorCode(err) == entitlements.ENOTFOUND {
			continue // this product issues no lease licenses
		}
		if err != nil {
			if s.keys != nil && !fresh {
				return s.keys, nil // keep serving with the keys we have; each batch checks them
			}
			return nil, err
		}
		keys[p] = k
	}
	s.keys, s.keysAt = keys, time.Now()
	return keys, nil
}

// decide runs one batch (ctx: the batch's deadline, before the first of its requests
// must be answered) in one transaction and answers each of its requests.
func (s *Service) decide(ctx context.Context, batch []*job) {
	if s.opts.ObserveBatch != nil {
		s.opts.ObserveBatch(len(batch))
	}
	fail := func(err error) {
		var de *entitlements.Error
		if !errors.As(err, &de) {
			err = unavailable(err) // say a context error is the database's unavailability
		}
		for _, j := range batch {
			j.Answer(result{}, err)
		}
	}
	reqs := make([]entitlements.LeaseRequest, len(batch))
	for i, j := range batch {
		reqs[i] = j.Req
	}
	var keys map[string]signing.Signer
	var decisions []entitlements.LeaseDecision
	var canary int
	var canaryFile []byte
	var err error
	// At most two tries: the second after a cached key turned out stale, with the
	// keys looked up again.
	for attempt := range 2 {
		if keys, err = s.signerSet(ctx, attempt > 0); err != nil {
			fail(err)
			return
		}
		canary, canaryFile = -1, nil
		decisions, err = s.store.GrantLeases(ctx, reqs, s.rules, s.precommit(keys, reqs, &canary, &canaryFile))
		if !errors.Is(err, errStaleKey) {
			break
		}
	}
	if err != nil {
		fail(err)
		return
	}
	for i, j := range batch {
		r := result{d: decisions[i], key: keys[decisions[i].Product]}
		if i == canary {
			r.file = canaryFile
		}
		j.Answer(r, nil)
	}
}

// precommit is the batch's last check before its commit: every granted lease has the
// key the database says may sign it now, and that key can sign (the canary).
func (s *Service) precommit(keys map[string]signing.Signer, reqs []entitlements.LeaseRequest, canary *int, canaryFile *[]byte) func([]entitlements.LeaseDecision) error {
	return func(ds []entitlements.LeaseDecision) error {
		for i := range ds {
			if !ds[i].Granted() {
				continue
			}
			if k, ok := keys[ds[i].Product]; !ok || k.KeyID() != ds[i].KeyID {
				return errStaleKey
			}
			if *canary < 0 {
				f, err := signLease(keys[ds[i].Product], &reqs[i], &ds[i])
				if err != nil {
					return fmt.Errorf("leases: lease key can't sign: %w", err)
				}
				*canary, *canaryFile = i, f
			}
		}
		return nil
	}
}

func signLease(k signing.Signer, r *entitlements.LeaseRequest, d *entitlements.LeaseDecision) ([]byte, error) {
	payload, err := json.Marshal(verify.LeasePayload{Schema: 1, LeaseID: d.LeaseID, LicenseID: r.LicenseID,
		InstanceFingerprint: r.Fingerprint, IssuedAt: verify.FormatTime(d.IssuedAt), ExpiresAt: verify.FormatTime(d.ExpiresAt)})
	if err != nil {
		return nil, err
	}
	return signing.SignEnvelope(k, verify.FormatLease, payload)
}
