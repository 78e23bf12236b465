package storage

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// orderLockClass is the first key of the order advisory locks (the second is a hash
// of the customer's ID); paymentLockClass serialises one payment intent's writes.
const (
	orderLockClass   = int32(0x4f524452) // "ORDR"
	paymentLockClass = int32(0x50415949) // "PAYI"
)

// errLockBusy: the lock was not free within the wait.
var errLockBusy = entitlements.Errorf(entitlements.EUNAVAILABLE, "another fulfilment of this customer's orders is under way: try again in a moment")

// WithOrderLock runs fn while this process holds the customer's order lock, a
// session-level advisory lock, so every replica's fulfilments, refunds and disputes
// of one customer's orders happen one at a time (a top-up and the refund of its
// order, or two credit packs of one line, can't interleave). Waiting holds no pool
// connection: the lock is tried every few milliseconds, up to wait; then the error
// is EUNAVAILABLE (Stripe redelivers, the success page says "processing"). A process
// that dies holding it releases it with its connection.
func (s *Store) WithOrderLock(ctx context.Context, customerID string, wait time.Duration, fn func() error) error {
	deadline := time.Now().Add(wait)
	pause := 5 * time.Millisecond
	for {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return unavailable(err)
		}
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, orderLockClass, customerID).Scan(&got); err != nil {
			conn.Release()
			return unavailable(err)
		}
		if got {
			defer func() {
				// With the caller's context gone the unlock still has to happen; if it
				// can't, the connection is closed, which releases the lock.
				uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, orderLockClass, customerID); err != nil {
					_ = conn.Conn().Close(uctx)
				}
				conn.Release()
			}()
			return fn()
		}
		conn.Release()
		if time.Now().After(deadline) {
			return errLockBusy
		}
		select {
		case <-ctx.Done():
			return unavailable(ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// ErrPaymentOfAnotherOrder: a session names a payment intent another order recorded.
var ErrPaymentOfAnotherOrder = entitlements.Errorf(entitlements.ECONFLICT, "the payment intent belongs to another order")

// MarkPayment moves an order to paid or processing from one of from, recording its
// payment intent, in one transaction serialised per payment intent with
// RecordPendingEvent. A refund or dispute recorded for that payment intent before
// (it came before its order's completion) is applied instead: the order moves to
// refunded, disputed or (a partial refund) held, in the staff queue, and issues
// nothing. It returns the order as it is after the call.
func (s *Store) MarkPayment(ctx context.Context, id, to string, from []string, paymentIntent string) (*entitlements.Order, error) {
	var out *entitlements.Order
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if paymentIntent != "" {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, paymentLockClass, paymentIntent); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE orders SET status = $2, payment_intent = coalesce($4, payment_intent), updated_at = now()
			WHERE id = $1 AND status = ANY($3)`, id, to, from, nullable(paymentIntent))
		if isUniqueViolation(err, "orders_payment_intent_key") {
			return ErrPaymentOfAnotherOrder
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			if err := appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: "system:self-service", Action: "order." + to, Subject: id,
				Details: map[string]string{"payment_intent": paymentIntent}}); err != nil {
				return err
			}
		}
		if paymentIntent != "" {
			if err := applyPendingEvents(ctx, tx, id, paymentIntent); err != nil {
				return err
			}
		}
		if out, err = scanOrder(tx.QueryRow(ctx, `SELECT `+orderCols+` FROM orders WHERE id = $1`, id)); err != nil {
			return notFound(err, "order", id)
		}
		return nil
	})
	return out, err
}

// applyPendingEvents applies the refunds and disputes recorded for a payment intent
// before its order knew it, to an order not fulfilled yet; the strongest wins
// (dispute, then full refund, then partial refund).
func applyPendingEvents(ctx context.Context, tx pgx.Tx, orderID, paymentIntent string) error {
	rows, err := tx.Query(ctx, `SELECT effect, reason FROM stripe_pending_events
		WHERE payment_intent = $1 AND matched_at IS NULL AND effect <> '' ORDER BY first_seen_at, event_id`, paymentIntent)
	if err != nil {
		return err
	}
	type pending struct{ effect, reason string }
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pending, error) {
		var p pending
		return p, r.Scan(&p.effect, &p.reason)
	})
	if err != nil || len(list) == 0 {
		return err
	}
	rank := map[string]int{entitlements.EffectPartialRefund: 1, entitlements.EffectRefunded: 2, entitlements.EffectDisputed: 3}
	best, reasons := list[0], ""
	for i, p := range list {
		if rank[p.effect] > rank[best.effect] {
			best = p
		}
		if i > 0 {
			reasons += "; "
		}
		reasons += p.reason
	}
	status := map[string]string{entitlements.EffectPartialRefund: entitlements.OrderHeld, entitlements.EffectRefunded: entitlements.OrderRefunded,
		entitlements.EffectDisputed: entitlements.OrderDisputed}[best.effect]
	reason := reasons + " (before the checkout completed: nothing was issued)"
	tag, err := tx.Exec(ctx, `UPDATE orders SET status = $2, review_reason = $3, reviewed_by = '', updated_at = now()
		WHERE id = $1 AND status IN ('pending', 'processing', 'paid') AND payment_intent = $4`, orderID, status, reason, paymentIntent)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return nil // another order's payment, or one fulfilled already
	}
	if _, err := tx.Exec(ctx, `UPDATE stripe_pending_events SET matched_at = now(), order_id = $2
		WHERE payment_intent = $1 AND matched_at IS NULL`, paymentIntent, orderID); err != nil {
		return err
	}
	return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: "system:self-service", Action: "order." + status, Subject: orderID,
		Details: map[string]string{"reason": reason, "payment_intent": paymentIntent}})
}

// RecordPendingEvent looks up the order of a refund's or dispute's payment intent
// and, when no order has recorded it, keeps the event (a redelivery counts one more
// delivery) to apply when one does; serialised per payment intent with MarkPayment.
// It returns the order when there is one, else the pending event as stored. A
// session event for an unknown order (no payment intent to match) is kept the same
// way, to bound its redeliveries.
func (s *Store) RecordPendingEvent(ctx context.Context, ev *entitlements.PendingPaymentEvent) (*entitlements.Order, *entitlements.PendingPaymentEvent, error) {
	var o *entitlements.Order
	out := *ev
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if ev.PaymentIntent != "" {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, paymentLockClass, ev.PaymentIntent); err != nil {
				return err
			}
			found, err := scanOrder(tx.QueryRow(ctx, `SELECT `+orderCols+` FROM orders WHERE payment_intent = $1`, ev.PaymentIntent))
			if err == nil {
				o = found
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		var givenUp *time.Time
		err := tx.QueryRow(ctx, `INSERT INTO stripe_pending_events (event_id, type, payment_intent, checkout_session_id, order_ref, effect, reason)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (event_id) DO UPDATE SET deliveries = stripe_pending_events.deliveries + 1, last_seen_at = now()
			RETURNING deliveries, first_seen_at, last_seen_at, given_up_at`,
			ev.EventID, ev.Type, ev.PaymentIntent, ev.CheckoutSessionID, ev.OrderRef, ev.Effect, ev.Reason).
			Scan(&out.Deliveries, &out.FirstSeenAt, &out.LastSeenAt, &givenUp)
		out.GivenUp = givenUp != nil
		return err
	})
	if err != nil {
		return nil, nil, unavailable(err)
	}
	if o != nil {
		return o, nil, nil
	}
	return nil, &out, nil
}

// GiveUpPendingEvent marks a pending event as answered for good (Stripe's retries
// are over; staff see it in the queue); it reports whether this call did.
func (s *Store) GiveUpPendingEvent(ctx context.Context, eventID string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE stripe_pending_events SET given_up_at = now() WHERE event_id = $1 AND given_up_at IS NULL`, eventID)
	if err != nil {
		return false, unavailable(err)
	}
	return tag.RowsAffected() == 1, nil
}

// MatchedPendingEvent marks a pending event handled (a redelivery found its order).
func (s *Store) MatchedPendingEvent(ctx context.Context, eventID, orderID string) error {
	_, err := s.pool.Exec(ctx, `UPDATE stripe_pending_events SET matched_at = now(), order_id = nullif($2, '')
		WHERE event_id = $1 AND matched_at IS NULL`, eventID, orderID)
	return unavailable(err)
}

// UnmatchedEvents lists the Stripe events that matched no order, oldest first.
func (s *Store) UnmatchedEvents(ctx context.Context, limit int) ([]*entitlements.PendingPaymentEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT event_id, type, payment_intent, checkout_session_id, order_ref, effect, reason, deliveries,
		first_seen_at, last_seen_at, given_up_at IS NOT NULL FROM stripe_pending_events WHERE matched_at IS NULL
		ORDER BY first_seen_at, event_id LIMIT $1`, limit)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.PendingPaymentEvent, error) {
		p := &entitlements.PendingPaymentEvent{}
		return p, r.Scan(&p.EventID, &p.Type, &p.PaymentIntent, &p.CheckoutSessionID, &p.OrderRef, &p.Effect, &p.Reason, &p.Deliveries,
			&p.FirstSeenAt, &p.LastSeenAt, &p.GivenUp)
	})
}

// RetargetOrder makes a renewal or top-up apply to the current license of its line:
// from the license it was bought for to a later license of the same line (reached
// by superseded_by), before its entitlement is opened, with an audit event.
func (s *Store) RetargetOrder(ctx context.Context, id, from, to string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var later bool
		err := tx.QueryRow(ctx, `WITH RECURSIVE line(id, n) AS (
				SELECT superseded_by, 1 FROM licenses WHERE id = $1 AND superseded_by IS NOT NULL
				UNION ALL
				SELECT l.superseded_by, line.n + 1 FROM licenses l JOIN line ON l.id = line.id WHERE l.superseded_by IS NOT NULL AND line.n < 1000)
			SELECT EXISTS (SELECT 1 FROM line WHERE id = $2)`, from, to).Scan(&later)
		if err != nil {
			return err
		}
		if !later {
			return entitlements.Errorf(entitlements.ECONFLICT, "license %s does not follow %s", to, from)
		}
		tag, err := tx.Exec(ctx, `UPDATE orders SET license_id = $3, updated_at = now()
			WHERE id = $1 AND license_id = $2 AND status = 'paid' AND NOT EXISTS (SELECT 1 FROM entitlements WHERE order_id = $1)`, id, from, to)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return entitlements.Errorf(entitlements.ECONFLICT, "order %s is no longer waiting to be fulfilled for %s", id, from)
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: "system:self-service", Action: "order.retarget", Subject: id,
			Details: map[string]string{"from": from, "to": to, "reason": "bought for " + from + "; " + to + " is the line's current license"}})
	})
}

// HoldOrder moves a paid order whose fulfilment was refused to held, in the staff
// queue with the reason; it reports whether this call did it.
func (s *Store) HoldOrder(ctx context.Context, id, reason string) (bool, error) {
	return s.setOrderReview(ctx, id, entitlements.OrderHeld, []string{entitlements.OrderPaid}, reason, "system:self-service")
}

// QueueOrder puts an order in the staff queue with a reason, its status unchanged
// (a partial refund of a fulfilled order: staff decide).
func (s *Store) QueueOrder(ctx context.Context, id, status, reason string) (bool, error) {
	return s.setOrderReview(ctx, id, status, []string{status}, reason, "system:self-service")
}

func (s *Store) setOrderReview(ctx context.Context, id, to string, from []string, reason, actor string) (bool, error) {
	done := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE orders SET status = $2, review_reason = $4, reviewed_by = '', updated_at = now()
			WHERE id = $1 AND status = ANY($3)`, id, to, from, reason)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		done = true
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "order." + to, Subject: id, Details: map[string]string{"reason": reason}})
	})
	return done, err
}

// ReleaseHeldOrder is staff's "fulfil by hand": a held order goes back to paid (the
// catalogue policy approves paid orders only), optionally for another license of the
// customer, with the staff member and note in the audit trail. The caller then
// fulfils it.
func (s *Store) ReleaseHeldOrder(ctx context.Context, id, licenseID, note string, by *entitlements.Staff) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		o, err := scanOrder(tx.QueryRow(ctx, `SELECT `+orderCols+` FROM orders WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return notFound(err, "order", id)
		}
		if o.Status != entitlements.OrderHeld {
			return entitlements.Errorf(entitlements.ECONFLICT, "order %s is %s: only a held order is fulfilled by hand", id, o.Status)
		}
		if licenseID != "" && licenseID != o.LicenseID {
			if o.LicenseID == "" {
				return entitlements.Invalid(map[string]string{"license": "a new purchase is not for a license"})
			}
			var ok bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM licenses WHERE id = $1 AND customer_id = $2)`, licenseID, o.CustomerID).Scan(&ok); err != nil {
				return err
			}
			if !ok {
				return entitlements.NotFound("license of the order's customer", licenseID)
			}
		} else {
			licenseID = o.LicenseID
		}
		if _, err := tx.Exec(ctx, `UPDATE orders SET status = 'paid', license_id = nullif($2, ''), reviewed_by = $3, updated_at = now() WHERE id = $1`,
			id, licenseID, by.Email); err != nil {
			return err
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: by.Email, Action: "order.release", Subject: id,
			Details: map[string]string{"note": note, "license_id": licenseID, "was": o.ReviewReason}})
	})
}

// RefundedByStaff records that staff refunded a held order through Stripe: it moves
// to refunded and leaves the queue, with the note.
func (s *Store) RefundedByStaff(ctx context.Context, id, refundID, note string, by *entitlements.Staff) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE orders SET status = 'refunded', reviewed_by = $2, updated_at = now()
			WHERE id = $1 AND status = 'held'`, id, by.Email)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return entitlements.Errorf(entitlements.ECONFLICT, "order %s is no longer held", id)
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: by.Email, Action: "order.refund", Subject: id,
			Details: map[string]string{"note": note, "refund_id": refundID}})
	})
}

// EntitlementOfOrder returns the entitlement an order opened, if any.
func (s *Store) EntitlementOfOrder(ctx context.Context, orderID string) (*entitlements.Entitlement, error) {
	e, err := scanEntitlement(s.pool.QueryRow(ctx, `SELECT `+entitlementCols+` FROM entitlements WHERE order_id = $1`, orderID))
	if err != nil {
		return nil, notFound(err, "entitlement of order", orderID)
	}
	return e, nil
}
