package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// TemplateVersion identifies the template version a license came from, with the
// fingerprint of its definition.
type TemplateVersion struct {
	Name        string
	Version     int
	Product     string
	Fingerprint []byte
	Definition  []byte
}

// Built is what a BuildFunc returns: the signed license and the template version
// that rendered it.
type Built struct {
	License  *entitlements.License
	Template TemplateVersion
	// LeaseTokenHash is the SHA-256 of a lease-required license's lease token; the
	// token itself is never stored.
	LeaseTokenHash []byte
}

// BuildFunc renders and signs the license for an entitlement that is locked and
// approved. base is the license it replaces (renewal, replacement, top-up), or nil.
// It runs inside the issuing transaction: if it fails, nothing is written.
type BuildFunc func(e *entitlements.Entitlement, c *entitlements.Customer, base *entitlements.License) (*Built, error)

// IssueLicense issues the license of an approved entitlement in one transaction: the
// template version recorded (or checked unchanged), the license row with its exact
// signed bytes and terms, the entitlement marked issued, the predecessor (renewal,
// replacement, top-up) marked superseded after the changeover, and the audit event.
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
		if e.ApprovedCustomerName != "" {
			// Signed as approved: a rename after approval changes the next license, not
			// this one.
			c.Name = e.ApprovedCustomerName
		}
		var base *entitlements.License
		if e.Supersedes != "" {
			if base, err = lockPredecessor(ctx, tx, e.Supersedes); err != nil {
				return err
			}
		}
		b, err := build(e, c, base)
		if err != nil {
			return err
		}
		if err := recordTemplate(ctx, tx, b.Template); err != nil {
			return err
		}
		l := b.License
		sum := sha256.Sum256(l.File)
		l.FileSHA256, l.EntitlementID, l.CreatedBy, l.Status, l.CustomerName = sum[:], e.ID, actor, entitlements.LicenseActive, c.Name
		var supersedes *string
		if e.Supersedes != "" {
			supersedes = &e.Supersedes
		}
		t := l.Terms
		_, err = tx.Exec(ctx, `
			INSERT INTO licenses (id, entitlement_id, customer_id, product, sku, template_version, key_id, issued_at,
				not_before, expires_at, form, features, limits, grace_period_seconds, instance_fingerprint, lease_ttl_seconds,
				status, supersedes, file_bytes, file_sha256, file_name, content_type, summary, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)`,
			l.ID, e.ID, e.CustomerID, e.Product, l.SKU, l.TemplateVersion, l.KeyID, l.IssuedAt, l.NotBefore, l.ExpiresAt,
			l.Form, t.Features, t.Limits, t.GracePeriodSeconds, t.InstanceFingerprint, t.LeaseTTLSeconds,
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
		details := map[string]string{"entitlement_id": e.ID, "customer_id": e.CustomerID, "sku": l.SKU,
			"template": fmt.Sprintf("%s@%d", l.SKU, l.TemplateVersion), "key_id": l.KeyID, "kind": e.Kind,
			"file_sha256": fmt.Sprintf("%x", l.FileSHA256)}
		if e.ContractRef != "" {
			details["contract_ref"] = e.ContractRef
		}
		l.ContractRef = e.ContractRef
		if e.Supersedes != "" {
			// The old license stays valid through the changeover, and never stops
			// before the new one starts.
			eff := l.IssuedAt.Add(time.Duration(e.ChangeoverSeconds) * time.Second)
			if eff.Before(l.NotBefore) {
				eff = l.NotBefore
			}
			_, err := tx.Exec(ctx, `UPDATE licenses SET status = 'superseded', superseded_by = $2, status_reason = $3,
				status_changed_at = now(), status_changed_by = $4, status_effective_at = $5 WHERE id = $1`,
				e.Supersedes, l.ID, e.Kind, actor, eff)
			if err != nil {
				return err
			}
			details["supersedes"], details["superseded_from"] = e.Supersedes, eff.UTC().Format(time.RFC3339)
		}
		if b.LeaseTokenHash != nil {
			if err := setLeaseToken(ctx, tx, l.ID, b.LeaseTokenHash); err != nil {
				return err
			}
		}
		out = l
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "license.issue", Subject: l.ID, Details: details})
	})
	return out, err
}

// recordTemplate stores a template version the first time it issues, and refuses a
// version whose definition changed since: a change must be a new version.
func recordTemplate(ctx context.Context, tx pgx.Tx, t TemplateVersion) error {
	_, err := tx.Exec(ctx, `INSERT INTO template_versions (name, version, product, fingerprint, definition)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name, version) DO NOTHING`, t.Name, t.Version, t.Product, t.Fingerprint, t.Definition)
	if err != nil {
		return err
	}
	var fp []byte
	if err := tx.QueryRow(ctx, `SELECT fingerprint FROM template_versions WHERE name = $1 AND version = $2`, t.Name, t.Version).Scan(&fp); err != nil {
		return err
	}
	if !bytes.Equal(fp, t.Fingerprint) {
		return entitlements.Errorf(entitlements.ECONFLICT,
			"template %s@%d was changed after it issued licenses: add version %d instead of editing it", t.Name, t.Version, t.Version+1)
	}
	return nil
}

// CheckTemplates compares the given template versions with the ones recorded and
// returns the keys of those whose definitions changed after issuing.
func (s *Store) CheckTemplates(ctx context.Context, all []TemplateVersion) ([]string, error) {
	var changed []string
	for _, t := range all {
		var fp []byte
		err := s.pool.QueryRow(ctx, `SELECT fingerprint FROM template_versions WHERE name = $1 AND version = $2`, t.Name, t.Version).Scan(&fp)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, unavailable(err)
		}
		if !bytes.Equal(fp, t.Fingerprint) {
			changed = append(changed, fmt.Sprintf("%s@%d", t.Name, t.Version))
		}
	}
	return changed, nil
}

// lockPredecessor takes the row lock on the license being replaced, checks it can
// still be replaced, and returns it (its terms carry over into a top-up).
func lockPredecessor(ctx context.Context, tx pgx.Tx, id string) (*entitlements.License, error) {
	l, err := scanLicense(tx.QueryRow(ctx, `SELECT `+licenseCols+` FROM licenses l JOIN customers c ON c.id = l.customer_id
		WHERE l.id = $1 FOR UPDATE OF l`, id))
	if err != nil {
		return nil, notFound(err, "license", id)
	}
	if l.SupersededBy != "" {
		return nil, entitlements.Errorf(entitlements.ECONFLICT, "license %s was already superseded by %s", id, l.SupersededBy)
	}
	if l.Status == entitlements.LicenseSuspended {
		return nil, entitlements.Errorf(entitlements.ECONFLICT, "license %s is suspended (%s): reinstate it first, then issue its renewal, replacement or top-up", id, l.StatusReason)
	}
	if l.Status != entitlements.LicenseActive {
		return nil, entitlements.Errorf(entitlements.ECONFLICT, "license %s is %s and can't be replaced", id, l.Status)
	}
	return l, nil
}

const licenseCols = `l.id, l.entitlement_id, l.customer_id, c.name, l.product, l.sku, l.template_version, l.key_id,
	l.issued_at, l.not_before, l.expires_at, l.form, l.features, l.limits, l.grace_period_seconds, l.instance_fingerprint,
	l.lease_ttl_seconds, l.status, l.status_reason, coalesce(l.status_effective_at, 'epoch'), l.status_changed_by,
	coalesce(l.supersedes, ''), coalesce(l.superseded_by, ''), l.file_sha256, l.file_name, l.content_type, l.created_by,
	coalesce(l.blocked_with, ''), l.supersession_lifted_at IS NOT NULL,
	(SELECT e.contract_ref FROM entitlements e WHERE e.id = l.entitlement_id)`

func scanLicense(r pgx.Row, extra ...any) (*entitlements.License, error) {
	l := &entitlements.License{}
	t := &l.Terms
	dst := append([]any{&l.ID, &l.EntitlementID, &l.CustomerID, &l.CustomerName, &l.Product, &l.SKU, &l.TemplateVersion,
		&l.KeyID, &l.IssuedAt, &l.NotBefore, &l.ExpiresAt, &l.Form, &t.Features, &t.Limits, &t.GracePeriodSeconds,
		&t.InstanceFingerprint, &t.LeaseTTLSeconds, &l.Status, &l.StatusReason, &l.StatusEffectiveAt, &l.StatusChangedBy,
		&l.Supersedes, &l.SupersededBy, &l.FileSHA256, &l.FileName, &l.ContentType, &l.CreatedBy,
		&l.BlockedWith, &l.SupersessionLifted, &l.ContractRef}, extra...)
	err := r.Scan(dst...)
	if l.StatusEffectiveAt.Equal(time.Unix(0, 0)) {
		l.StatusEffectiveAt = time.Time{}
	}
	return l, err
}

// LicenseOfEntitlement returns the license issued from an entitlement.
func (s *Store) LicenseOfEntitlement(ctx context.Context, entitlementID string) (*entitlements.License, error) {
	var id string
	if err := s.pool.QueryRow(ctx, `SELECT id FROM licenses WHERE entitlement_id = $1`, entitlementID).Scan(&id); err != nil {
		return nil, notFound(err, "license of entitlement", entitlementID)
	}
	return s.GetLicense(ctx, id)
}

// GetLicense returns a license with its exact file bytes and summary.
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
// issued_at, id), without file bytes. ExpiringBefore lists active licenses that end
// before that time, soonest first.
func (s *Store) ListLicenses(ctx context.Context, f entitlements.LicenseFilter) ([]*entitlements.License, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	if !f.ExpiringBefore.IsZero() {
		rows, err := s.pool.Query(ctx, `SELECT `+licenseCols+` FROM licenses l JOIN customers c ON c.id = l.customer_id
			WHERE l.status = 'active' AND l.expires_at < $1 AND l.expires_at > now() AND ($2 = '' OR l.customer_id = $2)
			  AND ($3 = '' OR l.product = $3) AND ($5 = '' OR l.sku = $5)
			ORDER BY l.expires_at, l.id LIMIT $4`, f.ExpiringBefore, f.CustomerID, f.Product, f.Limit, f.SKU)
		if err != nil {
			return nil, unavailable(err)
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.License, error) { return scanLicense(r) })
	}
	var since *time.Time
	if !f.IssuedSince.IsZero() {
		since = &f.IssuedSince
	}
	rows, err := s.pool.Query(ctx, `SELECT `+licenseCols+` FROM licenses l JOIN customers c ON c.id = l.customer_id
		WHERE ($1 = '' OR l.customer_id = $1) AND ($2 = '' OR l.status = $2) AND ($6 = '' OR l.product = $6)
		  AND ($7 = '' OR l.sku = $7) AND ($3 = '' OR (l.issued_at, l.id) < ($4, $3))
		  AND ($8::timestamptz IS NULL OR l.issued_at >= $8)
		ORDER BY l.issued_at DESC, l.id DESC LIMIT $5`,
		f.CustomerID, f.Status, f.AfterID, f.AfterIssuedAt, f.Limit, f.Product, f.SKU, since)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.License, error) { return scanLicense(r) })
}
