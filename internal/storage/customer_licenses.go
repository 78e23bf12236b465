package storage

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// The calls in this file serve the portal and the customer API. Each takes the
// customer of the session or token and filters by it in its SQL: a license, lease or
// token of another customer is not found, exactly like one that does not exist, and
// no caller can forget the filter because there is no unscoped form to call.

// CustomerLicenses returns a customer's licenses newest first, without file bytes;
// after is the (issued_at, id) of the previous page's last row (zero: the first page).
func (s *Store) CustomerLicenses(ctx context.Context, customerID string, afterIssuedAt time.Time, afterID string, limit int) ([]*entitlements.License, error) {
	if customerID == "" {
		return nil, errors.New(errCustomerScope)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+licenseCols+` FROM licenses l JOIN customers c ON c.id = l.customer_id
		WHERE l.customer_id = $1 AND ($2 = '' OR (l.issued_at, l.id) < ($3, $2))
		ORDER BY l.issued_at DESC, l.id DESC LIMIT $4`, customerID, afterID, afterIssuedAt, limit)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.License, error) { return scanLicense(r) })
}

// CustomerLicense returns one of a customer's licenses with its exact bytes and
// summary.
func (s *Store) CustomerLicense(ctx context.Context, customerID, id string) (*entitlements.License, error) {
	if customerID == "" {
		return nil, errors.New(errCustomerScope)
	}
	var file []byte
	var summary map[string]any
	l, err := scanLicense(s.pool.QueryRow(ctx, `SELECT `+licenseCols+`, l.file_bytes, l.summary
		FROM licenses l JOIN customers c ON c.id = l.customer_id WHERE l.id = $1 AND l.customer_id = $2`, id, customerID), &file, &summary)
	if err != nil {
		return nil, notFound(err, "license", id)
	}
	l.File, l.Summary = file, summary
	return l, nil
}

// CustomerLeases returns the lease slots of one of a customer's licenses.
func (s *Store) CustomerLeases(ctx context.Context, customerID, licenseID string) ([]*entitlements.Lease, error) {
	rows, err := s.pool.Query(ctx, `SELECT s.license_id, s.instance_fingerprint, s.lease_id, s.granted_at, s.renewed_at, s.expires_at, s.released_at, s.freed_early
		FROM leases s JOIN licenses l ON l.id = s.license_id
		WHERE s.license_id = $1 AND l.customer_id = $2
		ORDER BY (s.released_at IS NULL AND s.expires_at > now()) DESC, s.expires_at DESC LIMIT 1000`, licenseID, customerID)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.Lease, error) {
		l := &entitlements.Lease{}
		return l, r.Scan(&l.LicenseID, &l.Fingerprint, &l.LeaseID, &l.GrantedAt, &l.RenewedAt, &l.ExpiresAt, &l.ReleasedAt, &l.FreedEarly)
	})
}

// ReleaseCustomerLease releases a lease of one of a customer's licenses, under the
// same v1.1 release budget as DELETE /v1/leases (one code path: releaseLocked).
func (s *Store) ReleaseCustomerLease(ctx context.Context, customerID, licenseID, leaseID, actor string) (*entitlements.ReleaseResult, error) {
	if customerID == "" {
		return nil, errors.New(errCustomerScope)
	}
	res := &entitlements.ReleaseResult{LicenseID: licenseID}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM leases s JOIN licenses l ON l.id = s.license_id
			WHERE s.lease_id = $1 AND s.license_id = $2 AND l.customer_id = $3)`, leaseID, licenseID, customerID).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return entitlements.NotFound("lease", leaseID)
		}
		res.Known = true
		if err := releaseLocked(ctx, tx, res, leaseID); err != nil {
			return err
		}
		if !res.Released {
			return nil
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "lease.release", Subject: licenseID,
			Details: map[string]string{"lease_id": leaseID, "freed": map[bool]string{true: "yes", false: "no, held until expiry"}[res.Freed]}})
	})
	if err != nil {
		return nil, unavailable(err)
	}
	return res, nil
}

// RotateCustomerLeaseToken replaces the lease token of one of a customer's licenses.
func (s *Store) RotateCustomerLeaseToken(ctx context.Context, customerID, licenseID string, hash []byte, actor string) error {
	if customerID == "" {
		return errors.New(errCustomerScope)
	}
	return s.rotateLeaseToken(ctx, customerID, licenseID, hash, actor)
}
