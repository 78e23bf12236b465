package storage

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

const entitlementCols = `id, customer_id, product, template_name, template_version, state, starts_at, ends_at,
	overrides, instance_fingerprint, contract_ref, source, kind, supersedes, created_by, created_at,
	decided_by, coalesce(decided_at, 'epoch'::timestamptz)`

func scanEntitlement(r pgx.Row) (*entitlements.Entitlement, error) {
	e := &entitlements.Entitlement{}
	err := r.Scan(&e.ID, &e.CustomerID, &e.Product, &e.TemplateName, &e.TemplateVersion, &e.State,
		&e.StartsAt, &e.EndsAt, &e.Overrides, &e.InstanceFingerprint, &e.ContractRef, &e.Source, &e.Kind,
		&e.Supersedes, &e.CreatedBy, &e.CreatedAt, &e.DecidedBy, &e.DecidedAt)
	if e.DecidedAt.Equal(time.Unix(0, 0)) {
		e.DecidedAt = time.Time{}
	}
	return e, err
}

// CreateEntitlement inserts a draft; the caller has validated it against its template.
func (s *Store) CreateEntitlement(ctx context.Context, e *entitlements.Entitlement) error {
	if err := e.Validate(); err != nil {
		return err
	}
	e.ID = entitlements.NewID(entitlements.PrefixEntitlement)
	e.State = entitlements.StateDraft
	if e.Kind == "" {
		e.Kind = entitlements.KindNew
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := getCustomer(ctx, tx, e.CustomerID); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `
			INSERT INTO entitlements (id, customer_id, product, template_name, template_version, state, starts_at,
				ends_at, overrides, instance_fingerprint, contract_ref, source, kind, supersedes, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING created_at`,
			e.ID, e.CustomerID, e.Product, e.TemplateName, e.TemplateVersion, e.State, e.StartsAt, e.EndsAt,
			e.Overrides, e.InstanceFingerprint, e.ContractRef, e.Source, e.Kind, e.Supersedes, e.CreatedBy).Scan(&e.CreatedAt)
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, &AuditEvent{Actor: e.CreatedBy, Action: "entitlement.create", Subject: e.ID,
			Details: map[string]string{"customer_id": e.CustomerID, "template": e.TemplateName, "kind": e.Kind}})
	})
}

// GetEntitlement returns one entitlement.
func (s *Store) GetEntitlement(ctx context.Context, id string) (*entitlements.Entitlement, error) {
	e, err := scanEntitlement(s.pool.QueryRow(ctx, `SELECT `+entitlementCols+` FROM entitlements WHERE id = $1`, id))
	if err != nil {
		return nil, notFound(err, "entitlement", id)
	}
	return e, nil
}

func lockEntitlement(ctx context.Context, tx pgx.Tx, id string) (*entitlements.Entitlement, error) {
	e, err := scanEntitlement(tx.QueryRow(ctx, `SELECT `+entitlementCols+` FROM entitlements WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return nil, notFound(err, "entitlement", id)
	}
	return e, nil
}

// DecideEntitlement approves (or rejects) a draft under maker-checker, atomically: two
// approvers racing see one succeed and one conflict.
func (s *Store) DecideEntitlement(ctx context.Context, id string, by *entitlements.Staff, approve, makerChecker bool, reason string) (*entitlements.Entitlement, error) {
	var out *entitlements.Entitlement
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		e, err := lockEntitlement(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := e.CanApprove(by, makerChecker); err != nil {
			return err
		}
		state, action := entitlements.StateApproved, "entitlement.approve"
		if !approve {
			state, action = entitlements.StateRejected, "entitlement.reject"
		}
		err = tx.QueryRow(ctx, `UPDATE entitlements SET state = $2, decided_by = $3, decided_at = now() WHERE id = $1 RETURNING decided_at`,
			id, state, by.Email).Scan(&e.DecidedAt)
		if err != nil {
			return err
		}
		e.State, e.DecidedBy = state, by.Email
		out = e
		return appendAudit(ctx, tx, &AuditEvent{Actor: by.Email, Action: action, Subject: id, Details: map[string]string{"reason": reason}})
	})
	return out, err
}

// ListEntitlements returns entitlements newest first, optionally of one state.
func (s *Store) ListEntitlements(ctx context.Context, state string, limit int) ([]*entitlements.Entitlement, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	rows, err := s.pool.Query(ctx, `SELECT `+entitlementCols+` FROM entitlements WHERE ($1 = '' OR state = $1) ORDER BY created_at DESC, id DESC LIMIT $2`, state, limit)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.Entitlement, error) { return scanEntitlement(r) })
}
