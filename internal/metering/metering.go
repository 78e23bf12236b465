// Package metering is the issuer's side of usage metering (docs/spec/usage.md v1,
// docs/usage.md): it takes signed usage reports from router hosts (POST /v1/usage
// with a lease token), from files carried out of air-gapped sites (a customer API
// token, or the portal's upload form), checks each host's chain, and keeps daily
// rollups per license and instance; it shows consumption against the budget to staff
// (entitlements.Require) and to the customer (scoped by the Principal), and mails the
// customer's portal users at 80 % and 100 %.
//
// Ingestion is group-committed like the lease path (internal/leases): whatever
// arrives while a batch is being written forms the next batch, decided in one
// transaction under per-chain locks and made durable by one commit.
package metering

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"sync"
	"time"

	"github.com/metrum/licensing/internal/batcher"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/mail"
	"github.com/metrum/licensing/internal/storage"
)

// Options configure the service.
type Options struct {
	// MaxBatch caps the uploads decided in one transaction, MaxReports the reports
	// (defaults 64 and 4,000); Workers is how many batches may be in flight (2).
	MaxBatch, MaxReports, Workers int
	// Retention is how long raw reports are kept (usage.retention, default 90 days);
	// the daily rollups are kept for ever.
	Retention time.Duration
	// Mailer sends the 80 % and 100 % warnings: the portal's mailer (the SMTP path of
	// the sign-in links). Nil: warnings are recorded and shown, never mailed.
	Mailer mail.Mailer
	// BaseURL is the issuer's public URL, for the portal link in the mails.
	BaseURL string
	Log     *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Deadline is the deadline of an upload whose context has none (default 15 s).
	Deadline time.Duration
}

// Service ingests usage reports and serves their views.
type Service struct {
	store   *storage.Store
	o       Options
	batches *batcher.Batcher[*upload, *entitlements.UsageAnswer]
	// kick wakes the mail sender after a batch wrote warnings.
	kick chan struct{}

	// keys caches the host keys bound to chains: a bound key never changes, so a
	// report can be verified before its batch (on the caller's goroutine, in
	// parallel); the batch still compares with the key it reads under the lock.
	keyMu sync.RWMutex
	keys  map[entitlements.UsageChainKey]ed25519.PublicKey

	alerts alertCache
}

// maxCachedKeys bounds the key cache (it is dropped whole when full).
const maxCachedKeys = 200_000

// New is the service over a store; Run must be running for Ingest to answer.
func New(store *storage.Store, o Options) *Service {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 64
	}
	if o.MaxReports <= 0 {
		o.MaxReports = 4000
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Deadline <= 0 {
		o.Deadline = 15 * time.Second
	}
	s := &Service{store: store, o: o, kick: make(chan struct{}, 1), keys: map[entitlements.UsageChainKey]ed25519.PublicKey{}}
	s.batches = batcher.New(batcher.Options[*upload]{MaxBatch: o.MaxBatch, Workers: o.Workers, Deadline: o.Deadline,
		Weight: func(u *upload) int { return len(u.reports) }, MaxWeight: o.MaxReports,
		TooLate: errTooLate, OutcomeUnknown: errOutcomeUnknown, Unavailable: unavailable}, s.decide)
	return s
}

// DefaultRetention is how long raw reports are kept unless usage.retention says.
const DefaultRetention = 90 * 24 * time.Hour

func (s *Service) now() time.Time { return s.o.Now().UTC().Truncate(time.Microsecond) }

// Run decides queued uploads in batches, sends warning mails, and maintains the raw
// reports' partitions and the rolling windows, until ctx ends.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.batches.Run(ctx) })
	wg.Go(func() { s.sendMails(ctx) })
	wg.Go(func() { s.maintain(ctx) })
	wg.Wait()
}

// maintenanceEvery is how often partitions are made ahead and dropped behind, and
// rolling windows recomputed.
const maintenanceEvery = time.Hour

// maintain creates the raw reports' partitions ahead and drops the ones past the
// retention, and recomputes the rolling windows (days age out of them without any
// report), at start and then every hour.
func (s *Service) maintain(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Maintain(ctx); err != nil && ctx.Err() == nil {
			s.o.Log.ErrorContext(ctx, "usage maintenance failed; it runs again in an hour", "err", err)
		}
		t.Reset(maintenanceEvery)
	}
}

// Maintain runs the maintenance once: partitions ahead, old partitions dropped,
// rolling windows recomputed.
func (s *Service) Maintain(ctx context.Context) error {
	now := s.now()
	created, err := s.store.EnsureUsagePartitions(ctx, now)
	if err != nil {
		return err
	}
	dropped, err := s.store.DropUsagePartitions(ctx, now.Add(-s.o.Retention))
	if err != nil {
		return err
	}
	if len(created)+len(dropped) > 0 {
		s.o.Log.InfoContext(ctx, "usage report partitions", "created", created, "dropped", dropped)
	}
	_, err = s.store.RefreshUsageWindows(ctx, now)
	s.alerts.forget() // rolling windows aged out
	return err
}

func (s *Service) cachedKey(k entitlements.UsageChainKey) ed25519.PublicKey {
	s.keyMu.RLock()
	defer s.keyMu.RUnlock()
	return s.keys[k]
}

func (s *Service) cacheKeys(heads []*entitlements.UsageHead) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if len(s.keys)+len(heads) > maxCachedKeys {
		s.keys = map[entitlements.UsageChainKey]ed25519.PublicKey{}
	}
	for _, h := range heads {
		s.keys[h.UsageChainKey] = ed25519.PublicKey(h.Key)
	}
}
