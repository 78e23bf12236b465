package storage

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

const entitlementCols = `entitlements.id, entitlements.customer_id, entitlements.product, entitlements.template_name,
	entitlements.template_version, entitlements.state, entitlements.starts_at, entitlements.ends_at, entitlements.overrides,
	entitlements.instance_fingerprint, entitlements.contract_ref, entitlements.source, entitlements.kind, entitlements.supersedes,
	entitlements.changeover_seconds, entitlements.created_by, entitlements.created_at, entitlements.decided_by,
	coalesce(entitlements.decided_at, 'epoch'::timestamptz), entitlements.decision_reason, coalesce(entitlements.order_id, ''),
	entitlements.approved_customer_name, entitlements.reason,
	(SELECT name FROM customers WHERE customers.id = entitlements.customer_id)`

func scanEntitlement(r pgx.Row) (*entitlements.Entitlement, error) {
	e := &entitlements.Entitlement{}
	err := r.Scan(&e.ID, &e.CustomerID, &e.Product, &e.TemplateName, &e.TemplateVersion, &e.State,
		&e.StartsAt, &e.EndsAt, &e.Overrides, &e.InstanceFingerprint, &e.ContractRef, &e.Source, &e.Kind,
		&e.Supersedes, &e.ChangeoverSeconds, &e.CreatedBy, &e.CreatedAt, &e.DecidedBy, &e.DecidedAt, &e.DecisionReason, &e.OrderID,
		&e.ApprovedCustomerName, &e.Reason, &e.CustomerName)
	if e.DecidedAt.Equal(time.Unix(0, 0)) {
		e.DecidedAt = time.Time{}
	}
	return e, err
}

// CreateEntitlement inserts a draft; the caller has validated it against its template.
// An entitlement with an OrderID is a self-service one: it is inserted already
// approved by the catalogue policy, only for a paid order of the same customer,
// template and target license, and at most once per order (a second call returns the
// first one: fulfilment retries are idempotent).
func (s *Store) CreateEntitlement(ctx context.Context, e *entitlements.Entitlement) error {
	if err := e.Validate(); err != nil {
		return err
	}
	e.ID = entitlements.NewID(entitlements.PrefixEntitlement)
	e.State = entitlements.StateDraft
	if e.Kind == "" {
		e.Kind = entitlements.KindNew
	}
	var orderID *string
	if e.OrderID != "" {
		orderID = &e.OrderID
		e.State, e.DecidedBy = entitlements.StateApproved, entitlements.PolicyCatalogue
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		c, err := getCustomer(ctx, tx, e.CustomerID)
		if err != nil {
			return err
		}
		if orderID != nil {
			if err := checkOrderPolicy(ctx, tx, e); err != nil {
				return err
			}
			e.ApprovedCustomerName = c.Name // approved now, by the catalogue policy
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO entitlements (id, customer_id, product, template_name, template_version, state, starts_at,
				ends_at, overrides, instance_fingerprint, contract_ref, source, kind, supersedes, changeover_seconds, created_by,
				order_id, decided_by, decided_at, approved_customer_name, reason)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
				CASE WHEN $17::text IS NULL THEN NULL ELSE now() END, $19, $20)
			RETURNING created_at, coalesce(decided_at, 'epoch'::timestamptz)`,
			e.ID, e.CustomerID, e.Product, e.TemplateName, e.TemplateVersion, e.State, e.StartsAt, e.EndsAt,
			e.Overrides, e.InstanceFingerprint, e.ContractRef, e.Source, e.Kind, e.Supersedes, e.ChangeoverSeconds,
			e.CreatedBy, orderID, e.DecidedBy, e.ApprovedCustomerName, e.Reason).Scan(&e.CreatedAt, &e.DecidedAt)
		if isUniqueViolation(err, "entitlements_order_id_key") {
			return errOrderHasEntitlement
		}
		if isUniqueViolation(err, "entitlements_open_successor_idx") {
			return errOpenSuccessor
		}
		if err != nil {
			return err
		}
		e.CustomerName = c.Name
		details := map[string]string{"customer_id": e.CustomerID, "template": e.TemplateName, "kind": e.Kind}
		for k, v := range map[string]string{"supersedes": e.Supersedes, "contract_ref": e.ContractRef, "reason": e.Reason} {
			if v != "" {
				details[k] = v
			}
		}
		if err := appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: e.CreatedBy, Action: "entitlement.create", Subject: e.ID, Details: details}); err != nil {
			return err
		}
		if orderID == nil {
			return nil
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: entitlements.PolicyCatalogue, Action: "entitlement.approve", Subject: e.ID,
			Details: map[string]string{"policy": "catalogue", "order_id": e.OrderID, "reason": "self-service order paid"}})
	})
	if err == errOpenSuccessor {
		// Name the open one, so the page can link to it.
		return s.openSuccessorConflict(ctx, e.Supersedes)
	}
	if err == errOrderHasEntitlement {
		// A concurrent or earlier fulfilment opened it: hand back that one.
		prev, gerr := scanEntitlement(s.pool.QueryRow(ctx, `SELECT `+entitlementCols+` FROM entitlements WHERE order_id = $1`, e.OrderID))
		if gerr != nil {
			return notFound(gerr, "entitlement of order", e.OrderID)
		}
		*e = *prev
		return nil
	}
	return err
}

var (
	errOrderHasEntitlement = entitlements.Errorf(entitlements.ECONFLICT, "the order already has its entitlement")
	errOpenSuccessor       = entitlements.Errorf(entitlements.ECONFLICT, "the license already has an open successor")
)

// OpenSuccessor returns a license's open (draft or approved) renewal, replacement or
// top-up: at most one exists (entitlements_open_successor_idx). None is ENOTFOUND.
func (s *Store) OpenSuccessor(ctx context.Context, licenseID string) (*entitlements.Entitlement, error) {
	e, err := scanEntitlement(s.pool.QueryRow(ctx, `SELECT `+entitlementCols+` FROM entitlements
		WHERE supersedes = $1 AND state IN ('draft', 'approved')`, licenseID))
	if err != nil {
		return nil, notFound(err, "open successor of license", licenseID)
	}
	return e, nil
}

// openSuccessorConflict is the conflict of a second open successor, naming the one
// that is open when it can be read.
func (s *Store) openSuccessorConflict(ctx context.Context, licenseID string) error {
	open, err := s.OpenSuccessor(ctx, licenseID)
	if err != nil {
		open = nil
	}
	return entitlements.OpenSuccessorConflict(licenseID, open)
}

// checkOrderPolicy is the catalogue policy's approval: the order is paid (or a free
// evaluation), of this customer, for this template and target license.
func checkOrderPolicy(ctx context.Context, tx pgx.Tx, e *entitlements.Entitlement) error {
	var customer, template, target, status string
	err := tx.QueryRow(ctx, `SELECT customer_id, template, coalesce(license_id, ''), status FROM orders WHERE id = $1`, e.OrderID).
		Scan(&customer, &template, &target, &status)
	if err != nil {
		return notFound(err, "order", e.OrderID)
	}
	if customer != e.CustomerID || template != e.TemplateName || target != e.Supersedes {
		return entitlements.Errorf(entitlements.EFORBIDDEN, "order %s is not for this entitlement", e.OrderID)
	}
	if status != entitlements.OrderPaid && status != entitlements.OrderFulfilled {
		return entitlements.Errorf(entitlements.EFORBIDDEN, "order %s is %s, not paid: the catalogue policy approves paid orders only", e.OrderID, status)
	}
	return nil
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
		// Approval fixes the customer's name the license will be signed with.
		err = tx.QueryRow(ctx, `UPDATE entitlements SET state = $2, decided_by = $3, decided_at = now(), decision_reason = $4,
			approved_customer_name = CASE WHEN $2 = 'approved' THEN (SELECT name FROM customers WHERE id = customer_id) ELSE '' END
			WHERE id = $1 RETURNING decided_at, approved_customer_name`, id, state, by.Email, reason).Scan(&e.DecidedAt, &e.ApprovedCustomerName)
		if err != nil {
			return err
		}
		e.State, e.DecidedBy, e.DecisionReason = state, by.Email, reason
		out = e
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: by.Email, Action: action, Subject: id, Details: map[string]string{"reason": reason}})
	})
	return out, err
}

// CancelEntitlement cancels a draft or approved entitlement, with a reason.
func (s *Store) CancelEntitlement(ctx context.Context, id string, by *entitlements.Staff, reason string) (*entitlements.Entitlement, error) {
	var out *entitlements.Entitlement
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		e, err := lockEntitlement(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := e.CanCancel(by); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `UPDATE entitlements SET state = 'cancelled', decided_by = $2, decided_at = now(), decision_reason = $3
			WHERE id = $1 RETURNING decided_at`, id, by.Email, reason).Scan(&e.DecidedAt)
		if err != nil {
			return err
		}
		e.State, e.DecidedBy, e.DecisionReason = entitlements.StateCancelled, by.Email, reason
		out = e
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: by.Email, Action: "entitlement.cancel", Subject: id, Details: map[string]string{"reason": reason}})
	})
	return out, err
}
