package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// LeaseRequest is one POST /v1/leases, authenticated by nothing yet: the token hash
// is checked by the decision itself.
type LeaseRequest struct {
	TokenHash   []byte
	LicenseID   string
	Fingerprint string
	// NewLeaseID is used if the request takes a new slot.
	NewLeaseID string
}

// LeaseDecision is the outcome of one request: granted (a new slot), renewed (the
// host's slot extended), or refused with a reason ("unauthorized" or a license-*
// code of formats.md section 6).
type LeaseDecision struct {
	Outcome   string
	Reason    string
	Product   string
	LeaseID   string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// File is the signed lease, set by the sign callback for granted and renewed.
	File []byte
}

// Granted reports whether the decision hands out a lease.
func (d *LeaseDecision) Granted() bool { return d.Outcome == "granted" || d.Outcome == "renewed" }

// GrantLeases decides a batch of lease requests in one transaction: a single
// pipelined round trip runs lease_grant for each (requests sorted by license, so
// concurrent batches take license locks in one order and can't deadlock), sign is
// called for every lease granted, and one commit makes them all durable. Nothing is
// returned before the commit: a caller never hands out a lease whose row could still
// be lost. Any error fails the whole batch, which then changes nothing.
func (s *Store) GrantLeases(ctx context.Context, reqs []LeaseRequest, sign func(*LeaseRequest, *LeaseDecision) error) ([]LeaseDecision, error) {
	order := make([]int, len(reqs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(reqs[a].LicenseID, reqs[b].LicenseID) })
	out := make([]LeaseDecision, len(reqs))
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, i := range order {
			r := &reqs[i]
			b.Queue(`SELECT o_outcome, o_reason, coalesce(o_product, ''), coalesce(o_lease_id, ''),
				coalesce(o_issued_at, 'epoch'), coalesce(o_expires_at, 'epoch')
				FROM lease_grant($1, $2, $3, $4)`, r.TokenHash, r.LicenseID, r.Fingerprint, r.NewLeaseID)
		}
		res := tx.SendBatch(ctx, b)
		for _, i := range order {
			d := &out[i]
			if err := res.QueryRow().Scan(&d.Outcome, &d.Reason, &d.Product, &d.LeaseID, &d.IssuedAt, &d.ExpiresAt); err != nil {
				res.Close()
				return unavailable(fmt.Errorf("storage: lease decision: %w", err))
			}
		}
		if err := res.Close(); err != nil {
			return unavailable(err)
		}
		for i := range out {
			if out[i].Granted() {
				if err := sign(&reqs[i], &out[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// ReleaseLease frees the slot a lease holds, at once, when the token is the lease's
// license's. It reports false for an unknown token; an unknown, foreign or already
// released lease is a no-op (DELETE is idempotent and reveals nothing).
func (s *Store) ReleaseLease(ctx context.Context, tokenHash []byte, leaseID string) (bool, error) {
	known := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var licenseID string
		err := tx.QueryRow(ctx, `SELECT license_id FROM lease_tokens WHERE token_hash = $1`, tokenHash).Scan(&licenseID)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		known = true
		var fp string
		err = tx.QueryRow(ctx, `UPDATE leases SET released_at = now(), expires_at = least(expires_at, now())
			WHERE lease_id = $1 AND license_id = $2 AND released_at IS NULL RETURNING instance_fingerprint`, leaseID, licenseID).Scan(&fp)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO lease_events (at, license_id, instance_fingerprint, lease_id, outcome)
			VALUES (now(), $1, $2, $3, 'released')`, licenseID, fp, leaseID)
		return err
	})
	if err != nil {
		return false, unavailable(err)
	}
	return known, nil
}

// Lease is a host's slot on a license.
type Lease struct {
	LicenseID   string
	Fingerprint string
	LeaseID     string
	GrantedAt   time.Time
	RenewedAt   time.Time
	ExpiresAt   time.Time
	ReleasedAt  *time.Time
}

// ListLeases returns a license's slots, live ones first.
func (s *Store) ListLeases(ctx context.Context, licenseID string) ([]*Lease, error) {
	rows, err := s.pool.Query(ctx, `SELECT license_id, instance_fingerprint, lease_id, granted_at, renewed_at, expires_at, released_at
		FROM leases WHERE license_id = $1 ORDER BY (released_at IS NULL AND expires_at > now()) DESC, expires_at DESC`, licenseID)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Lease, error) {
		l := &Lease{}
		return l, r.Scan(&l.LicenseID, &l.Fingerprint, &l.LeaseID, &l.GrantedAt, &l.RenewedAt, &l.ExpiresAt, &l.ReleasedAt)
	})
}

// LeaseEvent is one record of the lease history.
type LeaseEvent struct {
	ID          int64
	At          time.Time
	LicenseID   string
	Fingerprint string
	LeaseID     string
	Outcome     string
	Reason      string
	ExpiresAt   *time.Time
}

// ListLeaseEvents returns a license's lease history, newest first; before pages.
func (s *Store) ListLeaseEvents(ctx context.Context, licenseID string, before int64, limit int) ([]*LeaseEvent, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, license_id, instance_fingerprint, lease_id, outcome, reason, expires_at
		FROM lease_events WHERE license_id = $1 AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3`, licenseID, before, limit)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*LeaseEvent, error) {
		e := &LeaseEvent{}
		return e, r.Scan(&e.ID, &e.At, &e.LicenseID, &e.Fingerprint, &e.LeaseID, &e.Outcome, &e.Reason, &e.ExpiresAt)
	})
}
