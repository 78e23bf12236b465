package storage

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// BuildFunc renders and signs the license for an entitlement that is locked and
// approved. It runs inside the issuing transaction: if it fails, nothing is written.
type BuildFunc func(e *entitlements.Entitlement, c *entitlements.Customer) (*entitlements.License, error)

// IssueLicense issues the license of an approved entitlement in one transaction: the
// license row with its exact signed bytes, the entitlement marked issued, the
// predecessor (renewal, replacement, top-up) marked superseded, and the audit event.
// Any failure leaves no trace. Two issuers racing on one entitlement, or two
// successors racing for one predecessor, get one license and one conflict.
func (s *Store) IssueLicense(ctx context.Context, entitlementID, actor string, build BuildFunc) (*entitlements.License, error) {
	var out *entitlements.License
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		e, err := lockEntitlement(ctx, tx, entitlementID)
		if err != nil {
			return err
		}
		if err := e.CanIssue(); err != nil {
			return err
		}
		c, err := getCustomer(ctx, tx, e.CustomerID)
		if err != nil {
			return err
		}
		if e.Supersedes != "" {
			if err := lockPredecessor(ctx, tx, e.Supersedes); err != nil {
				return err
			}
		}
		l, err := build(e, c)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(l.File)
		l.FileSHA256, l.EntitlementID, l.CreatedBy, l.Status = sum[:], e.ID, actor, entitlements.LicenseActive
		var supersedes *string
		if e.Supersedes != "" {
			supersedes = &e.Supersedes
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO licenses (id, entitlement_id, customer_id, product, sku, template_version, key_id, issued_at,
				not_before, expires_at, status, supersedes, file_bytes, file_sha256, file_name, content_type, summary, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
			l.ID, e.ID, e.CustomerID, e.Product, l.SKU, l.TemplateVersion, l.KeyID, l.IssuedAt, l.NotBefore, l.ExpiresAt,
			l.Status, supersedes, l.File, l.FileSHA256, l.FileName, l.ContentType, l.Summary, actor)
		if isUniqueViolation(err, "licenses_supersedes_key") {
			return entitlements.Errorf(entitlements.ECONFLICT, "license %s already has a successor", e.Supersedes)
		}
		if err != nil {
			return fmt.Errorf("storage: insert license: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE entitlements SET state = 'issued' WHERE id = $1`, e.ID); err != nil {
			return err
		}
		if e.Supersedes != "" {
			_, err := tx.Exec(ctx, `UPDATE licenses SET status = 'superseded', superseded_by = $2, status_reason = $3,
				status_changed_at = now() WHERE id = $1`, e.Supersedes, l.ID, e.Kind)
			if err != nil {
				return err
			}
		}
		l.CustomerName = c.Name
		out = l
		return appendAudit(ctx, tx, &AuditEvent{Actor: actor, Action: "license.issue", Subject: l.ID, Details: map[string]string{
			"entitlement_id": e.ID, "customer_id": e.CustomerID, "sku": l.SKU, "key_id": l.KeyID,
			"kind": e.Kind, "supersedes": e.Supersedes, "file_sha256": fmt.Sprintf("%x", l.FileSHA256),
		}})
	})
	return out, err
}

// lockPredecessor takes the row lock on the license being replaced and checks it
// can still be replaced.
func lockPredecessor(ctx context.Context, tx pgx.Tx, id string) error {
	var status string
	var next *string
	err := tx.QueryRow(ctx, `SELECT status, superseded_by FROM licenses WHERE id = $1 FOR UPDATE`, id).Scan(&status, &next)
	if err != nil {
		return notFound(err, "license", id)
	}
	if next != nil {
		return entitlements.Errorf(entitlements.ECONFLICT, "license %s was already superseded by %s", id, *next)
	}
	if status != entitlements.LicenseActive && status != entitlements.LicenseSuspended {
		return entitlements.Errorf(entitlements.ECONFLICT, "license %s is %s and can't be replaced", id, status)
	}
	return nil
}

const licenseCols = `l.id, l.entitlement_id, l.customer_id, c.name, l.product, l.sku, l.template_version, l.key_id,
	l.issued_at, l.not_before, l.expires_at, l.status, l.status_reason, coalesce(l.supersedes, ''),
	coalesce(l.superseded_by, ''), l.file_sha256, l.file_name, l.content_type, l.created_by`

func scanLicense(r pgx.Row, extra ...any) (*entitlements.License, error) {
	l := &entitlements.License{}
	dst := append([]any{&l.ID, &l.EntitlementID, &l.CustomerID, &l.CustomerName, &l.Product, &l.SKU, &l.TemplateVersion,
		&l.KeyID, &l.IssuedAt, &l.NotBefore, &l.ExpiresAt, &l.Status, &l.StatusReason, &l.Supersedes, &l.SupersededBy,
		&l.FileSHA256, &l.FileName, &l.ContentType, &l.CreatedBy}, extra...)
	return l, r.Scan(dst...)
}

// GetLicense returns a license with its exact file bytes.
func (s *Store) GetLicense(ctx context.Context, id string) (*entitlements.License, error) {
	var file []byte
	var summary map[string]any
	row := s.pool.QueryRow(ctx, `SELECT `+licenseCols+`, l.file_bytes, l.summary FROM licenses l JOIN customers c ON c.id = l.customer_id WHERE l.id = $1`, id)
	l, err := scanLicense(row, &file, &summary)
	if err != nil {
		return nil, notFound(err, "license", id)
	}
	l.File, l.Summary = file, summary
	return l, nil
}

// ListLicenses returns licenses newest first, one page per call (keyset pagination on
// issued_at, id), without file bytes.
func (s *Store) ListLicenses(ctx context.Context, f entitlements.LicenseFilter) ([]*entitlements.License, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	rows, err := s.pool.Query(ctx, `SELECT `+licenseCols+` FROM licenses l JOIN customers c ON c.id = l.customer_id
		WHERE ($1 = '' OR l.customer_id = $1) AND ($2 = '' OR l.status = $2)
		  AND ($3 = '' OR (l.issued_at, l.id) < ($4, $3))
		ORDER BY l.issued_at DESC, l.id DESC LIMIT $5`,
		f.CustomerID, f.Status, f.AfterID, f.AfterIssuedAt, f.Limit)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.License, error) { return scanLicense(r) })
}
