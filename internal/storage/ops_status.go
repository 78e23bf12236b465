package storage

import (
	"context"
)

// OpsCounts are the queue and expiry counts the issuer's gauges show (one query, for
// the scheduler: never on a request's path).
type OpsCounts struct {
	Expiring7d, Expiring30d int64 // active licenses ending within 7 and 30 days
	Drafts                  int64 // entitlements waiting for approval
	OrdersInReview          int64 // orders waiting in the staff queue
}

// CountOps reads OpsCounts.
func (s *Store) CountOps(ctx context.Context) (*OpsCounts, error) {
	var c OpsCounts
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM licenses WHERE status = 'active' AND expires_at > now() AND expires_at <= now() + interval '7 days'),
		(SELECT count(*) FROM licenses WHERE status = 'active' AND expires_at > now() AND expires_at <= now() + interval '30 days'),
		(SELECT count(*) FROM entitlements WHERE state = 'draft'),
		(SELECT count(*) FROM orders WHERE review_reason <> '' AND reviewed_by = '')`).
		Scan(&c.Expiring7d, &c.Expiring30d, &c.Drafts, &c.OrdersInReview)
	if err != nil {
		return nil, unavailable(err)
	}
	return &c, nil
}
