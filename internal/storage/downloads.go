package storage

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// RecordDownload records a delivered file: who (portal user, token, staff), what,
// when, from where. A delivery is made only once its record is written. A staff
// member's download is in the audit trail too, in the same transaction.
func (s *Store) RecordDownload(ctx context.Context, d *entitlements.Download) error {
	var lic *string
	if d.LicenseID != "" {
		lic = &d.LicenseID
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO downloads (customer_id, license_id, product, what, actor_kind, actor, client_addr, file_name)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, at`, d.CustomerID, lic, d.Product, d.What, d.ActorKind, d.Actor, d.ClientAddr, d.FileName).
			Scan(&d.ID, &d.At)
		if err != nil || d.ActorKind != entitlements.PrincipalStaff {
			return err
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: d.Actor, Action: "license.download", Subject: d.LicenseID,
			Details: map[string]string{"what": d.What, "client_addr": d.ClientAddr}})
	})
}

// ListDownloads returns a license's downloads, newest first (staff read them: the
// evidence of delivery); before > 0 pages: the downloads older than that one.
func (s *Store) ListDownloads(ctx context.Context, licenseID string, before int64, limit int) ([]*entitlements.Download, error) {
	return s.downloads(ctx, `license_id = $1`, licenseID, before, limit)
}

// CustomerDownloads returns every download of a customer's (license files, bundles
// and the verifier release), newest first.
func (s *Store) CustomerDownloads(ctx context.Context, customerID string, limit int) ([]*entitlements.Download, error) {
	return s.downloads(ctx, `customer_id = $1`, customerID, 0, limit)
}

func (s *Store) downloads(ctx context.Context, where, arg string, before int64, limit int) ([]*entitlements.Download, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, customer_id, coalesce(license_id, ''), product, what, file_name, actor_kind, actor, client_addr
		FROM downloads WHERE `+where+` AND ($3::bigint = 0 OR id < $3) ORDER BY id DESC LIMIT $2`, arg, limit, before)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.Download, error) {
		d := &entitlements.Download{}
		return d, r.Scan(&d.ID, &d.At, &d.CustomerID, &d.LicenseID, &d.Product, &d.What, &d.FileName, &d.ActorKind, &d.Actor, &d.ClientAddr)
	})
}
