package storage

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// setLeaseToken stores (or replaces) the hash of a license's lease token.
func setLeaseToken(ctx context.Context, tx pgx.Tx, licenseID string, hash []byte) error {
	_, err := tx.Exec(ctx, `INSERT INTO lease_tokens (license_id, token_hash) VALUES ($1, $2)
		ON CONFLICT (license_id) DO UPDATE SET token_hash = excluded.token_hash, rotated_at = now()`, licenseID, hash)
	return err
}

// RotateLeaseToken replaces a lease-required license's token hash: the old token
// stops working at once, because every lease request checks the hash in the database.
func (s *Store) RotateLeaseToken(ctx context.Context, licenseID string, hash []byte, actor string) error {
	return s.rotateLeaseToken(ctx, "", licenseID, hash, actor)
}

// rotateLeaseToken is RotateLeaseToken, limited to one customer's licenses when
// customerID is set (RotateCustomerLeaseToken always sets it).
func (s *Store) rotateLeaseToken(ctx context.Context, customerID, licenseID string, hash []byte, actor string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var ttl int64
		err := tx.QueryRow(ctx, `SELECT lease_ttl_seconds FROM licenses WHERE id = $1 AND ($2 = '' OR customer_id = $2) FOR UPDATE`,
			licenseID, customerID).Scan(&ttl)
		if err != nil {
			return notFound(err, "license", licenseID)
		}
		if ttl == 0 {
			return entitlements.Errorf(entitlements.ECONFLICT, "license %s does not use online leases", licenseID)
		}
		if err := setLeaseToken(ctx, tx, licenseID, hash); err != nil {
			return err
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "lease_token.rotate", Subject: licenseID})
	})
}
