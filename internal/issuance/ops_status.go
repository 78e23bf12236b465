package issuance

import (
	"context"
	"strings"
	"time"
)

// OpsStatus is what the issuer's operational gauges show (docs/operations.md,
// "Metrics and alerts"): when each signing key stops being usable, each product's
// current bundle, what expires soon and what waits for staff. Only counts and public
// key IDs: nothing a scrape may not see.
type OpsStatus struct {
	At      time.Time
	Keys    []KeyExpiry // published keys with a not_after
	Bundles []BundleAge // each product's latest bundle
	// Expiring7d, Expiring30d: active licenses ending within 7 and 30 days.
	Expiring7d, Expiring30d int64
	// Drafts wait for approval; OrdersInReview wait in the staff queue.
	Drafts, OrdersInReview int64
}

// KeyExpiry is a signing key's not_after.
type KeyExpiry struct {
	KID, Product, Purposes string
	NotAfter               time.Time
}

// BundleAge is a product's latest revocation bundle.
type BundleAge struct {
	Product             string
	IssuedAt, ExpiresAt time.Time
}

// OpsStatus reads the gauges' numbers. It is the scheduler's read (WatchOps), not a
// staff member's: no actor, and only counts and public key IDs come out.
func (s *Service) OpsStatus(ctx context.Context) (*OpsStatus, error) {
	st := &OpsStatus{At: s.now()}
	keys, err := s.store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.Status == "published" && k.NotAfter != nil {
			st.Keys = append(st.Keys, KeyExpiry{KID: k.KID, Product: k.Product, Purposes: joinPurposes(k.Purposes), NotAfter: *k.NotAfter})
		}
	}
	bundles, err := s.store.LatestBundles(ctx)
	if err != nil {
		return nil, err
	}
	for _, b := range bundles {
		st.Bundles = append(st.Bundles, BundleAge{Product: b.Product, IssuedAt: b.IssuedAt, ExpiresAt: b.ExpiresAt})
	}
	counts, err := s.store.CountOps(ctx)
	if err != nil {
		return nil, err
	}
	st.Expiring7d, st.Expiring30d, st.Drafts, st.OrdersInReview = counts.Expiring7d, counts.Expiring30d, counts.Drafts, counts.OrdersInReview
	return st, nil
}

func joinPurposes(p []string) string { return strings.Join(p, ",") }

// WatchOps reads OpsStatus every interval until ctx ends and hands it to observe
// (the metrics' gauges), or the error when the read failed. It runs beside the
// bundle scheduler, so no scrape and no request ever waits on these queries.
func (s *Service) WatchOps(ctx context.Context, interval time.Duration, observe func(*OpsStatus, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, interval)
		st, err := s.OpsStatus(qctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		observe(st, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
