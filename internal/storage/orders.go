package storage

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

const orderCols = `id, customer_id, item, kind, template, amount, currency, coalesce(license_id, ''), coalesce(checkout_session_id, ''),
	coalesce(payment_intent, ''), status, coalesce(fulfilled_license_id, ''), review_reason, reviewed_by, created_by, created_at, updated_at`

func scanOrder(r pgx.Row) (*entitlements.Order, error) {
	o := &entitlements.Order{}
	return o, r.Scan(&o.ID, &o.CustomerID, &o.Item, &o.Kind, &o.Template, &o.Amount, &o.Currency, &o.LicenseID,
		&o.CheckoutSessionID, &o.PaymentIntent, &o.Status, &o.FulfilledLicenseID, &o.ReviewReason, &o.ReviewedBy,
		&o.CreatedBy, &o.CreatedAt, &o.UpdatedAt)
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CreateOrder records a new order (its amount from the catalogue), with its audit
// event. A second evaluation of one customer is a conflict.
func (s *Store) CreateOrder(ctx context.Context, o *entitlements.Order) error {
	if o.ID == "" {
		o.ID = entitlements.NewID(entitlements.PrefixOrder)
	}
	if o.Status == "" {
		o.Status = entitlements.OrderPending
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if o.LicenseID != "" {
			// The license renewed or topped up is one of this customer's.
			var ok bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM licenses WHERE id = $1 AND customer_id = $2)`, o.LicenseID, o.CustomerID).Scan(&ok); err != nil {
				return err
			}
			if !ok {
				return entitlements.NotFound("license", o.LicenseID)
			}
		}
		err := tx.QueryRow(ctx, `INSERT INTO orders (id, customer_id, item, kind, template, amount, currency, license_id, status, created_by, checkout_session_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING created_at, updated_at`,
			o.ID, o.CustomerID, o.Item, o.Kind, o.Template, o.Amount, o.Currency, nullable(o.LicenseID), o.Status, o.CreatedBy, nullable(o.CheckoutSessionID)).
			Scan(&o.CreatedAt, &o.UpdatedAt)
		if isUniqueViolation(err, "orders_one_evaluation_idx") {
			return entitlements.Errorf(entitlements.ECONFLICT, "this organisation has had its free evaluation: buy a pilot, or contact sales")
		}
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: o.CreatedBy, Action: "order.create", Subject: o.ID,
			Details: map[string]string{"customer_id": o.CustomerID, "item": o.Item, "amount": itoa64(o.Amount), "currency": o.Currency}})
	})
}

// GetOrder returns an order.
func (s *Store) GetOrder(ctx context.Context, id string) (*entitlements.Order, error) {
	o, err := scanOrder(s.pool.QueryRow(ctx, `SELECT `+orderCols+` FROM orders WHERE id = $1`, id))
	if err != nil {
		return nil, notFound(err, "order", id)
	}
	return o, nil
}

// CustomerOrder returns one of a customer's orders (another customer's is not found).
func (s *Store) CustomerOrder(ctx context.Context, customerID, id string) (*entitlements.Order, error) {
	if customerID == "" {
		return nil, errors.New(errCustomerScope)
	}
	o, err := scanOrder(s.pool.QueryRow(ctx, `SELECT `+orderCols+` FROM orders WHERE id = $1 AND customer_id = $2`, id, customerID))
	if err != nil {
		return nil, notFound(err, "order", id)
	}
	return o, nil
}

// OrderByPaymentIntent finds the order a charge or dispute belongs to.
func (s *Store) OrderByPaymentIntent(ctx context.Context, pi string) (*entitlements.Order, error) {
	o, err := scanOrder(s.pool.QueryRow(ctx, `SELECT `+orderCols+` FROM orders WHERE payment_intent = $1`, pi))
	if err != nil {
		return nil, notFound(err, "order with payment", pi)
	}
	return o, nil
}

// MoveOrder changes an order's status only from one of the given statuses, with its
// audit event; it reports whether it did (a concurrent or repeated call finds it
// moved already).
func (s *Store) MoveOrder(ctx context.Context, id, to string, from []string, why string) (bool, error) {
	moved := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE orders SET status = $2, updated_at = now() WHERE id = $1 AND status = ANY($3)`, id, to, from)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		moved = true
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: "system:self-service", Action: "order." + to, Subject: id,
			Details: map[string]string{"reason": why}})
	})
	return moved, err
}

// FulfilOrder marks a paid order fulfilled with its license, once, with the one
// audit event of its fulfilment; it reports whether this call did it.
func (s *Store) FulfilOrder(ctx context.Context, id, licenseID, via string) (bool, error) {
	done := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE orders SET status = 'fulfilled', fulfilled_license_id = $2, updated_at = now()
			WHERE id = $1 AND status = 'paid'`, id, licenseID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		done = true
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: "system:self-service", Action: "order.fulfil", Subject: id,
			Details: map[string]string{"license_id": licenseID, "via": via}})
	})
	return done, err
}

// FlagOrder moves an order to refunded or disputed and puts it in the staff queue
// with the reason; it reports whether this call did it. A refunded order is flagged
// again only by a dispute (the refund Stripe reports after staff refunded a held
// order changes nothing).
func (s *Store) FlagOrder(ctx context.Context, id, status, reason string) (bool, error) {
	done := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE orders SET status = $2, review_reason = $3, reviewed_by = '', updated_at = now()
			WHERE id = $1 AND (status IN ('fulfilled', 'paid', 'held', 'processing') OR (status = 'refunded' AND $2 = 'disputed'))`, id, status, reason)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		done = true
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: "system:self-service", Action: "order." + status, Subject: id,
			Details: map[string]string{"reason": reason}})
	})
	return done, err
}

// ReviewQueue lists orders waiting for staff review (refunds, disputes), oldest first.
func (s *Store) ReviewQueue(ctx context.Context, limit int) ([]*entitlements.Order, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+orderCols+` FROM orders WHERE review_reason <> '' AND reviewed_by = ''
		ORDER BY updated_at LIMIT $1`, limit)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.Order, error) { return scanOrder(r) })
}

// ReviewOrder takes an order out of the staff queue, with a note.
func (s *Store) ReviewOrder(ctx context.Context, id, note string, by *entitlements.Staff) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE orders SET reviewed_by = $2, updated_at = now() WHERE id = $1 AND review_reason <> '' AND reviewed_by = ''`, id, by.Email)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return entitlements.Errorf(entitlements.ECONFLICT, "order %s is not waiting for review", id)
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: by.Email, Action: "order.review", Subject: id, Details: map[string]string{"note": note}})
	})
}

// StripeEventSeen reports whether an event was handled before.
func (s *Store) StripeEventSeen(ctx context.Context, id string) (bool, error) {
	var seen bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM stripe_events WHERE id = $1)`, id).Scan(&seen)
	return seen, unavailable(err)
}

// RecordStripeEvent records a handled event (once; a concurrent duplicate is fine).
func (s *Store) RecordStripeEvent(ctx context.Context, id, typ, orderID, outcome string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO stripe_events (id, type, order_id, outcome) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO NOTHING`, id, typ, orderID, outcome)
	return unavailable(err)
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// CreateEvaluationRequest stores a one-time link token (hash) for a visitor's
// evaluation request and returns the token.
func (s *Store) CreateEvaluationRequest(ctx context.Context, email, company string, ttl time.Duration) (string, error) {
	tok, hash, err := newSecret("")
	if err != nil {
		return "", err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO evaluation_requests (token_hash, email, company, expires_at) VALUES ($1, $2, $3, now() + $4::interval)`,
		hash, email, company, ttl.String())
	return tok, unavailable(err)
}

// PeekEvaluationRequest returns a usable request without spending it.
func (s *Store) PeekEvaluationRequest(ctx context.Context, token string) (*entitlements.EvaluationRequest, error) {
	r := &entitlements.EvaluationRequest{}
	err := s.pool.QueryRow(ctx, `SELECT email, company FROM evaluation_requests WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()`,
		HashSecret(token)).Scan(&r.Email, &r.Company)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errLinkUnusable
	}
	return r, unavailable(err)
}

// StartEvaluation spends an evaluation link and, in one transaction: checks that the
// domain of the link's email had no evaluation within period (serialised per domain),
// creates the customer, its portal user and the free evaluation order (paid: nothing
// to pay), and claims the domain. The caller then fulfils the order.
func (s *Store) StartEvaluation(ctx context.Context, token string, period time.Duration, item, template, currency string) (*entitlements.Order, *entitlements.PortalUser, error) {
	var o *entitlements.Order
	var u *entitlements.PortalUser
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var email, company string
		err := tx.QueryRow(ctx, `UPDATE evaluation_requests SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
			RETURNING email, company`, HashSecret(token)).Scan(&email, &company)
		if errors.Is(err, pgx.ErrNoRows) {
			return errLinkUnusable
		}
		if err != nil {
			return err
		}
		domain := entitlements.EvaluationDomain(email)
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('evaluation:' || $1))`, domain); err != nil {
			return err
		}
		var recent bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM evaluation_claims WHERE domain = $1 AND claimed_at > now() - $2::interval)`,
			domain, period.String()).Scan(&recent); err != nil {
			return err
		}
		if recent {
			return entitlements.Errorf(entitlements.ECONFLICT, "an evaluation was already started for %s recently: contact sales, or ask your colleague to invite you", domain)
		}
		c := &entitlements.Customer{Name: company, Email: email}
		if err := c.Validate(); err != nil {
			return err
		}
		c.ID = entitlements.NewID(entitlements.PrefixCustomer)
		if _, err := tx.Exec(ctx, `INSERT INTO customers (id, name, email) VALUES ($1, $2, $3)`, c.ID, c.Name, c.Email); err != nil {
			return err
		}
		u, err = scanPortalUser(tx.QueryRow(ctx, `INSERT INTO portal_users (customer_id, email, name, created_by, last_sign_in_at)
			VALUES ($1, $2, '', 'self-service', now()) RETURNING `+portalUserCols, c.ID, email))
		if isUniqueViolation(err, "") {
			return entitlements.Errorf(entitlements.ECONFLICT, "%s already has a portal account: sign in instead", email)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO evaluation_claims (domain, customer_id, email) VALUES ($1, $2, $3)`, domain, c.ID, email); err != nil {
			return err
		}
		o = &entitlements.Order{ID: entitlements.NewID(entitlements.PrefixOrder), CustomerID: c.ID, Item: item, Kind: entitlements.OrderEvaluation,
			Template: template, Currency: currency, Status: entitlements.OrderPaid, CreatedBy: "portal:" + email}
		if err := tx.QueryRow(ctx, `INSERT INTO orders (id, customer_id, item, kind, template, amount, currency, status, created_by)
			VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8) RETURNING created_at, updated_at`,
			o.ID, o.CustomerID, o.Item, o.Kind, o.Template, o.Currency, o.Status, o.CreatedBy).Scan(&o.CreatedAt, &o.UpdatedAt); err != nil {
			return err
		}
		for _, ev := range []*entitlements.AuditEvent{
			{Actor: "portal:" + email, Action: "customer.create", Subject: c.ID, Details: map[string]string{"name": c.Name, "via": "self-service evaluation"}},
			{Actor: "portal:" + email, Action: "order.create", Subject: o.ID, Details: map[string]string{"customer_id": c.ID, "item": item, "amount": "0"}},
		} {
			if err := appendAudit(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return o, u, nil
}

// OpenPortalSession starts a session for a portal user who just proved their address
// (an evaluation link) and returns its token.
func (s *Store) OpenPortalSession(ctx context.Context, u *entitlements.PortalUser) (string, error) {
	tok, hash, err := newSecret("")
	if err != nil {
		return "", err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO portal_sessions (token_hash, portal_user_id, customer_id, expires_at)
		VALUES ($1, $2, $3, now() + $4::interval)`, hash, u.ID, u.CustomerID, entitlements.PortalAbsoluteTTL.String())
	return tok, unavailable(err)
}
