package storage

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/metrum/licensing/internal/entitlements"
)

// ExpiriesPerWeek counts active licenses by the week they expire, from now on.
func (s *Store) ExpiriesPerWeek(ctx context.Context, weeks int) ([]entitlements.Bucket, error) {
	return s.buckets(ctx, `SELECT date_trunc('week', expires_at), count(*) FROM licenses
		WHERE status = 'active' AND expires_at > now() AND expires_at < now() + make_interval(weeks => $1) GROUP BY 1 ORDER BY 1`, weeks)
}

// LastAuditID is the ID of the newest audit event (0 when there is none): every
// change of a license, entitlement or key appends one, so a cache of what those
// tables hold is current while it is unchanged. One index lookup.
func (s *Store) LastAuditID(ctx context.Context) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM audit_events`).Scan(&id)
	return id, unavailable(err)
}

// IssuedPerWeek counts licenses by the week they were issued, up to now.
func (s *Store) IssuedPerWeek(ctx context.Context, weeks int) ([]entitlements.Bucket, error) {
	return s.buckets(ctx, `SELECT date_trunc('week', issued_at), count(*) FROM licenses
		WHERE issued_at > now() - make_interval(weeks => $1) GROUP BY 1 ORDER BY 1`, weeks)
}

// rollupLag is how long after an hour ends its lease events are rolled up (a batch's
// clock is read before its commit, so late rows of an hour arrive within seconds).
const rollupLag = 2 * time.Minute

// RollupLeaseHours adds the closed hours of the last week that are not rolled up yet to
// lease_hourly (the running issuer calls it every minute). Idempotent.
func (s *Store) RollupLeaseHours(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO lease_hourly (hour, refused, count)
		SELECT date_trunc('hour', at), outcome = 'refused', count(*) FROM lease_events
		WHERE at >= greatest(coalesce((SELECT max(hour) + interval '1 hour' FROM lease_hourly), '-infinity'), date_trunc('hour', now()) - interval '169 hours')
		  AND at < date_trunc('hour', now() - $1::interval) AND outcome IN ('granted', 'renewed', 'refused')
		GROUP BY 1, 2 ON CONFLICT DO NOTHING`, rollupLag.String())
	if err != nil {
		return unavailable(err)
	}
	_, err = s.pool.Exec(ctx, `DELETE FROM lease_hourly WHERE hour < now() - interval '30 days'`)
	return unavailable(err)
}

// LeaseOutcomesPerHour counts lease grants (granted and renewed) and refusals per hour:
// the rolled-up hours from lease_hourly, the rest (the hours since) from lease_events.
func (s *Store) LeaseOutcomesPerHour(ctx context.Context, hours int) (grants, refusals []entitlements.Bucket, err error) {
	rows, err := s.pool.Query(ctx, `WITH done AS (SELECT coalesce(max(hour) + interval '1 hour', '-infinity') AS upto FROM lease_hourly)
		SELECT hour, refused, count FROM lease_hourly WHERE hour > now() - make_interval(hours => $1)
		UNION ALL
		SELECT date_trunc('hour', at), outcome = 'refused', count(*) FROM lease_events, done
		WHERE at >= greatest(done.upto, now() - make_interval(hours => $1)) AND outcome IN ('granted', 'renewed', 'refused') GROUP BY 1, 2
		ORDER BY 1`, hours)
	if err != nil {
		return nil, nil, unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var b entitlements.Bucket
		var refused bool
		if err := rows.Scan(&b.At, &refused, &b.Count); err != nil {
			return nil, nil, err
		}
		if refused {
			refusals = append(refusals, b)
		} else {
			grants = append(grants, b)
		}
	}
	return grants, refusals, rows.Err()
}

func (s *Store) buckets(ctx context.Context, sql string, args ...any) ([]entitlements.Bucket, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (entitlements.Bucket, error) {
		var b entitlements.Bucket
		return b, r.Scan(&b.At, &b.Count)
	})
}

// LatestBundles returns each product's newest bundle (no bytes).
func (s *Store) LatestBundles(ctx context.Context) ([]*entitlements.Bundle, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (product) `+bundleCols+` FROM revocation_bundles ORDER BY product, sequence DESC`)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.Bundle, error) { return scanBundle(r) })
}

// CountDrafts counts entitlements waiting for approval.
func (s *Store) CountDrafts(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM entitlements WHERE state = 'draft'`).Scan(&n)
	return n, unavailable(err)
}
