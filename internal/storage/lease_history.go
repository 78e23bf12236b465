package storage

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/metrum/licensing/internal/entitlements"
)

// ListLeases returns a license's slots, live ones first.
func (s *Store) ListLeases(ctx context.Context, licenseID string) ([]*entitlements.Lease, error) {
	rows, err := s.pool.Query(ctx, `SELECT license_id, instance_fingerprint, lease_id, granted_at, renewed_at, expires_at, released_at, freed_early
		FROM leases WHERE license_id = $1 ORDER BY (released_at IS NULL AND expires_at > now()) DESC, expires_at DESC`, licenseID)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.Lease, error) {
		l := &entitlements.Lease{}
		return l, r.Scan(&l.LicenseID, &l.Fingerprint, &l.LeaseID, &l.GrantedAt, &l.RenewedAt, &l.ExpiresAt, &l.ReleasedAt, &l.FreedEarly)
	})
}

// ListLeaseEvents returns a license's lease history, newest first; before pages.
func (s *Store) ListLeaseEvents(ctx context.Context, licenseID string, before int64, limit int) ([]*entitlements.LeaseEvent, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, license_id, instance_fingerprint, lease_id, outcome, reason, expires_at
		FROM lease_events WHERE license_id = $1 AND ($2::bigint = 0 OR id < $2) ORDER BY id DESC LIMIT $3`, licenseID, before, limit)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.LeaseEvent, error) {
		e := &entitlements.LeaseEvent{}
		return e, r.Scan(&e.ID, &e.At, &e.LicenseID, &e.Fingerprint, &e.LeaseID, &e.Outcome, &e.Reason, &e.ExpiresAt)
	})
}
