package purchase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
)

// ErrBadSignature: a webhook that is unsigned, wrongly signed, stale (older than
// stripe-go's default tolerance) or of another API version. It changes nothing.
var ErrBadSignature = entitlements.Errorf(entitlements.EINVALID, "the webhook's Stripe signature does not verify")

// ErrNotMatchedYet: a genuine event for an order or payment this database does not
// know yet. It is answered 503 so Stripe redelivers it (docs/purchase.md, "Events
// before their order").
var ErrNotMatchedYet = entitlements.Errorf(entitlements.EUNAVAILABLE, "the event matches no order yet: it is kept, and Stripe will deliver it again")

// HandleWebhook checks a webhook's signature over its raw body, and handles the event
// once: a redelivered event (same ID) does nothing. It returns what it did.
func (s *Service) HandleWebhook(ctx context.Context, payload []byte, signature string) (string, error) {
	ev, err := webhook.ConstructEvent(payload, signature, s.WebhookSecret)
	if err != nil {
		s.logf(ctx, slog.LevelWarn, "stripe webhook refused", "err", err)
		return "", ErrBadSignature
	}
	if seen, err := s.store.StripeEventSeen(ctx, ev.ID); err != nil || seen {
		return "duplicate", err
	}
	orderID, outcome, err := s.handle(ctx, &ev)
	if errors.Is(err, ErrUnknownOrder) {
		orderID, outcome, err = s.notMatched(ctx, &ev, &entitlements.PendingPaymentEvent{EventID: ev.ID, Type: string(ev.Type)})
	}
	if errors.Is(err, ErrMismatch) || errors.Is(err, errNoOrderRef) {
		// Changes nothing and is logged (by Fulfil); Stripe gets a 200 so it stops
		// redelivering something no retry can fix. Not recorded: nothing was done.
		return "ignored: " + entitlements.ErrorMessage(err), nil
	}
	if err != nil {
		return "", err // 5xx: Stripe redelivers, and the event is handled then
	}
	if orderID != "" {
		// A redelivery that found its order: no longer unmatched.
		if err := s.store.MatchedPendingEvent(ctx, ev.ID, orderID); err != nil {
			return "", err
		}
	}
	return outcome, s.store.RecordStripeEvent(ctx, ev.ID, string(ev.Type), orderID, outcome)
}

func (s *Service) handle(ctx context.Context, ev *stripe.Event) (orderID, outcome string, err error) {
	switch ev.Type {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded":
		var sess stripe.CheckoutSession
		if err := json.Unmarshal(ev.Data.Raw, &sess); err != nil {
			return "", "", fmt.Errorf("purchase: %s: %w", ev.Type, err)
		}
		res, err := s.Fulfil(ctx, &sess, "webhook "+string(ev.Type))
		if err != nil {
			return "", "", err
		}
		return res.Order.ID, res.Order.Status, nil
	case "checkout.session.async_payment_failed", "checkout.session.expired":
		var sess stripe.CheckoutSession
		if err := json.Unmarshal(ev.Data.Raw, &sess); err != nil {
			return "", "", fmt.Errorf("purchase: %s: %w", ev.Type, err)
		}
		o, err := s.orderOf(ctx, &sess, "webhook "+string(ev.Type))
		if err != nil {
			return "", "", err
		}
		to, from, why := entitlements.OrderFailed, []string{entitlements.OrderPending, entitlements.OrderProcessing}, "the asynchronous payment failed"
		if ev.Type == "checkout.session.expired" {
			to, from, why = entitlements.OrderCancelled, []string{entitlements.OrderPending}, "the Checkout Session expired unpaid"
		}
		if _, err := s.store.MoveOrder(ctx, o.ID, to, from, why); err != nil {
			return "", "", err
		}
		cur, err := s.store.GetOrder(ctx, o.ID)
		if err != nil {
			return "", "", err
		}
		return o.ID, cur.Status, nil
	case "charge.refunded":
		var ch stripe.Charge
		if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil {
			return "", "", fmt.Errorf("purchase: %s: %w", ev.Type, err)
		}
		effect := entitlements.RefundEffect(ch.AmountRefunded, ch.Amount)
		if ch.Refunded {
			effect = entitlements.EffectRefunded
		}
		reason := fmt.Sprintf("refund of charge %s (%s of %s)", ch.ID, money(ch.AmountRefunded, string(ch.Currency)), money(ch.Amount, string(ch.Currency)))
		return s.paymentEvent(ctx, ev, paymentIntentOf(ch.PaymentIntent), effect, reason)
	case "charge.dispute.created":
		var d stripe.Dispute
		if err := json.Unmarshal(ev.Data.Raw, &d); err != nil {
			return "", "", fmt.Errorf("purchase: %s: %w", ev.Type, err)
		}
		return s.paymentEvent(ctx, ev, paymentIntentOf(d.PaymentIntent), entitlements.EffectDisputed, "dispute "+d.ID+" ("+string(d.Reason)+")")
	}
	return "", "ignored: event type not handled", nil
}

func paymentIntentOf(pi *stripe.PaymentIntent) string {
	if pi == nil {
		return ""
	}
	return pi.ID
}

func money(minor int64, currency string) string {
	return fmt.Sprintf("%d.%02d %s", minor/100, minor%100, currency)
}

// paymentEvent applies a refund or dispute to the order of its payment intent. When
// no order has recorded that payment intent yet (the event came before the
// checkout's completion), the event is kept by its payment intent, applied when the
// completion records it, and answered 5xx meanwhile (notMatched).
func (s *Service) paymentEvent(ctx context.Context, ev *stripe.Event, pi, effect, reason string) (string, string, error) {
	if pi == "" {
		s.logf(ctx, slog.LevelWarn, "stripe: "+string(ev.Type)+" without a payment intent: nothing done", "event_id", ev.ID)
		return "", "", errNoOrderRef
	}
	p := &entitlements.PendingPaymentEvent{EventID: ev.ID, Type: string(ev.Type), PaymentIntent: pi, Effect: effect, Reason: reason}
	o, pending, err := s.store.RecordPendingEvent(ctx, p)
	if err != nil {
		return "", "", err
	}
	if pending != nil {
		return s.notMatched(ctx, ev, pending)
	}
	var outcome string
	err = s.store.WithOrderLock(ctx, o.CustomerID, lockWait, func() error {
		var err error
		outcome, err = s.flagLocked(ctx, o.ID, effect, reason)
		return err
	})
	return o.ID, outcome, err
}

// notMatched answers an event that matches no order: 5xx (Stripe redelivers) for
// RetryWindow after it was first seen; after that 2xx, and it stays for staff in
// `issuer order unmatched`.
func (s *Service) notMatched(ctx context.Context, ev *stripe.Event, p *entitlements.PendingPaymentEvent) (string, string, error) {
	if p.FirstSeenAt.IsZero() {
		var sess stripe.CheckoutSession
		if json.Unmarshal(ev.Data.Raw, &sess) == nil {
			p.CheckoutSessionID, p.OrderRef = sess.ID, sess.ClientReferenceID
			if p.OrderRef == "" {
				p.OrderRef = sess.Metadata["order_id"]
			}
		}
		_, stored, err := s.store.RecordPendingEvent(ctx, p)
		if err != nil {
			return "", "", err
		}
		p = stored
	}
	if !p.GivenUp && s.now().Sub(p.FirstSeenAt) < s.RetryWindow {
		s.logf(ctx, slog.LevelWarn, "stripe: event matches no order yet: answered 503 so Stripe redelivers", "event_id", ev.ID,
			"type", ev.Type, "payment_intent", p.PaymentIntent, "deliveries", p.Deliveries)
		return "", "", ErrNotMatchedYet
	}
	if did, err := s.store.GiveUpPendingEvent(ctx, ev.ID); err != nil {
		return "", "", err
	} else if did {
		s.logf(ctx, slog.LevelError, "stripe: event matched no order within Stripe's retry period: kept for staff (issuer order unmatched)",
			"event_id", ev.ID, "type", ev.Type, "payment_intent", p.PaymentIntent, "deliveries", p.Deliveries)
	}
	return "", "kept for staff: matches no order", nil
}

// flagLocked applies a refund or dispute to an order, under its customer's order
// lock (no fulfilment interleaves). A full refund or a dispute suspends the order's
// license, with the chain rule (its predecessors in changeover are suspended with it;
// never a silent revoke), and queues the order; a partial refund only queues it.
func (s *Service) flagLocked(ctx context.Context, id, effect, reason string) (string, error) {
	o, err := s.store.GetOrder(ctx, id)
	if err != nil {
		return "", err
	}
	if effect == entitlements.EffectPartialRefund {
		reason += ": a partial refund suspends nothing; decide whether the license stays"
		if _, err := s.store.QueueOrder(ctx, o.ID, o.Status, reason); err != nil {
			return "", err
		}
		s.logf(ctx, slog.LevelWarn, "order partially refunded: waiting for staff review", "order_id", o.ID)
		return o.Status, nil
	}
	status := entitlements.OrderRefunded
	if effect == entitlements.EffectDisputed {
		status = entitlements.OrderDisputed
	}
	if o.Status == entitlements.OrderRefunded && status == entitlements.OrderRefunded {
		return o.Status, nil // refunded already (by staff, or an earlier event)
	}
	if o.FulfilledLicenseID != "" {
		_, err := s.Issuer.ChangeStatus(ctx, o.FulfilledLicenseID, entitlements.ActionSuspend, reason, time.Time{}, issuance.SelfService)
		if err != nil && entitlements.ErrorCode(err) != entitlements.ECONFLICT {
			return "", err
		}
		if err != nil {
			// Already suspended, revoked or superseded: staff decide in the queue.
			reason += "; license not suspended: " + entitlements.ErrorMessage(err)
		}
	}
	done, err := s.store.FlagOrder(ctx, o.ID, status, reason)
	if err != nil {
		return "", err
	}
	if !done {
		s.logf(ctx, slog.LevelWarn, "stripe: "+effect+" for an order that can't take it: nothing done", "order_id", o.ID, "status", o.Status)
		return o.Status, nil
	}
	s.logf(ctx, slog.LevelWarn, "order "+status+": license suspended, waiting for staff review", "order_id", o.ID, "license_id", o.FulfilledLicenseID)
	return status, nil
}
