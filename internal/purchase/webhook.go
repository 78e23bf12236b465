package purchase

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
)

// ErrBadSignature: a webhook that is unsigned, wrongly signed, stale (older than
// stripe-go's default tolerance) or of another API version. It changes nothing.
var ErrBadSignature = entitlements.Errorf(entitlements.EINVALID, "the webhook's Stripe signature does not verify")

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
	if err == ErrUnknownOrder || err == ErrMismatch {
		// Changes nothing and is logged (by Fulfil); Stripe gets a 200 so it stops
		// redelivering something no retry can fix. Not recorded: nothing was done.
		return "ignored: " + entitlements.ErrorMessage(err), nil
	}
	if err != nil {
		return "", err // 5xx: Stripe redelivers, and the event is handled then
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
	case "checkout.session.async_payment_failed":
		var sess stripe.CheckoutSession
		if err := json.Unmarshal(ev.Data.Raw, &sess); err != nil {
			return "", "", fmt.Errorf("purchase: %s: %w", ev.Type, err)
		}
		o, err := s.store.GetOrder(ctx, sess.ClientReferenceID)
		if err != nil || o.CheckoutSessionID != sess.ID {
			s.logf(ctx, slog.LevelWarn, "stripe: async payment failed for an unknown order", "session_id", sess.ID)
			return "", "", ErrUnknownOrder
		}
		if _, err := s.store.MoveOrder(ctx, o.ID, entitlements.OrderFailed, []string{entitlements.OrderPending, entitlements.OrderProcessing}, ""); err != nil {
			return "", "", err
		}
		return o.ID, entitlements.OrderFailed, nil
	case "charge.refunded":
		var ch stripe.Charge
		if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil {
			return "", "", fmt.Errorf("purchase: %s: %w", ev.Type, err)
		}
		return s.suspendFor(ctx, paymentIntentOf(ch.PaymentIntent), entitlements.OrderRefunded, "refund of charge "+ch.ID)
	case "charge.dispute.created":
		var d stripe.Dispute
		if err := json.Unmarshal(ev.Data.Raw, &d); err != nil {
			return "", "", fmt.Errorf("purchase: %s: %w", ev.Type, err)
		}
		return s.suspendFor(ctx, paymentIntentOf(d.PaymentIntent), entitlements.OrderDisputed, "dispute "+d.ID+" ("+string(d.Reason)+")")
	}
	return "", "ignored: event type not handled", nil
}

func paymentIntentOf(pi *stripe.PaymentIntent) string {
	if pi == nil {
		return ""
	}
	return pi.ID
}

// suspendFor suspends the license of a refunded or disputed order (never a silent
// revoke) and puts the order in the staff queue with the reason.
func (s *Service) suspendFor(ctx context.Context, pi, status, reason string) (string, string, error) {
	if pi == "" {
		return "", "", ErrUnknownOrder
	}
	o, err := s.store.OrderByPaymentIntent(ctx, pi)
	if entitlements.ErrorCode(err) == entitlements.ENOTFOUND {
		s.logf(ctx, slog.LevelWarn, "stripe: "+status+" for an unknown payment", "payment_intent", pi)
		return "", "", ErrUnknownOrder
	}
	if err != nil {
		return "", "", err
	}
	if o.FulfilledLicenseID != "" {
		_, err := s.Issuer.ChangeStatus(ctx, o.FulfilledLicenseID, entitlements.ActionSuspend, reason, timeZero, issuance.SelfService)
		if err != nil && entitlements.ErrorCode(err) != entitlements.ECONFLICT {
			return "", "", err
		}
		if err != nil {
			// Already suspended, revoked or superseded: staff decide in the queue.
			reason += "; license not suspended: " + entitlements.ErrorMessage(err)
		}
	}
	if _, err := s.store.FlagOrder(ctx, o.ID, status, reason); err != nil {
		return "", "", err
	}
	s.logf(ctx, slog.LevelWarn, "order "+status+": license suspended, waiting for staff review", "order_id", o.ID, "license_id", o.FulfilledLicenseID)
	return o.ID, status, nil
}
