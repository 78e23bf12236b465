package storage

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/metrum/licensing/internal/entitlements"
)

// ReleaseLease releases a lease when the token is its license's (lease-api.md v1.1):
// the release is always accepted, but frees the slot at once only while fewer than
// the license's release budget of released-but-unexpired leases freed theirs early;
// beyond that the slot stays occupied until the signed lease expires (expires_at is
// never shortened: the host keeps a lease that verifies offline until then). admit,
// when set, is the caller's rate limit on the authenticated license: a non-zero delay
// refuses the request before anything is written. The license's exclusive lease lock
// serialises the release with every lease batch of the license.
func (s *Store) ReleaseLease(ctx context.Context, tokenHash []byte, leaseID string, admit func(licenseID string) time.Duration) (*entitlements.ReleaseResult, error) {
	res := &entitlements.ReleaseResult{}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		*res = entitlements.ReleaseResult{}
		err := tx.QueryRow(ctx, `SELECT license_id FROM lease_tokens WHERE token_hash = $1`, tokenHash).Scan(&res.LicenseID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		res.Known = true
		if admit != nil {
			if d := admit(res.LicenseID); d > 0 {
				return entitlements.RateLimited(d, "too many lease requests for this license: retry after the Retry-After delay")
			}
		}
		return releaseLocked(ctx, tx, res, leaseID)
	})
	if entitlements.ErrorCode(err) == entitlements.ERATELIMITED {
		return res, err
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return res, nil
}

// releaseLocked releases leaseID of res.LicenseID under the license's exclusive lease
// lock, within the release budget, and records it; res says what happened. An
// unknown or already released lease is a no-op.
func releaseLocked(ctx context.Context, tx pgx.Tx, res *entitlements.ReleaseResult, leaseID string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, leaseLockClass, leaseLockKey(res.LicenseID)); err != nil {
		return err
	}
	var fp string
	var budget *int64
	var now time.Time
	err := tx.QueryRow(ctx, `SELECT s.instance_fingerprint, s.expires_at, l.release_budget, date_trunc('second', clock_timestamp())
		FROM leases s JOIN licenses l ON l.id = s.license_id
		WHERE s.lease_id = $1 AND s.license_id = $2 AND s.released_at IS NULL`, leaseID, res.LicenseID).Scan(&fp, &res.ExpiresAt, &budget, &now)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // unknown, foreign or already released: idempotent, reveals nothing
	}
	if err != nil {
		return err
	}
	res.Released = true
	res.Freed = budget == nil || !res.ExpiresAt.After(now)
	if !res.Freed {
		var early int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM leases WHERE license_id = $1 AND released_at IS NOT NULL
			AND freed_early AND expires_at > $2`, res.LicenseID, now).Scan(&early); err != nil {
			return err
		}
		res.Freed = early < *budget
	}
	if _, err := tx.Exec(ctx, `UPDATE leases SET released_at = $3, freed_early = $4 WHERE lease_id = $1 AND license_id = $2`,
		leaseID, res.LicenseID, now, res.Freed); err != nil {
		return err
	}
	why := entitlements.ReleaseHeld
	if res.Freed {
		why = entitlements.ReleaseFreed
	}
	_, err = tx.Exec(ctx, `INSERT INTO lease_events (at, license_id, instance_fingerprint, lease_id, outcome, reason, expires_at)
		VALUES ($1, $2, $3, $4, 'released', $5, $6)`, now, res.LicenseID, fp, leaseID, why, res.ExpiresAt)
	return err
}
