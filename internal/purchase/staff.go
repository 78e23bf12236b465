package purchase

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/metrum/licensing/internal/entitlements"
)

// FulfilByHand is staff's way out for a held order (paid, fulfilment refused): it
// goes back to paid, optionally for another current license of the customer (a
// renewal or top-up), and is fulfilled as the webhook would, under the customer's
// order lock. Approvers and above, with a note for the audit trail. When it is
// refused again the order stays held with the new reason, and the error says why.
func (s *Service) FulfilByHand(ctx context.Context, orderID, licenseID, note string, by *entitlements.Staff) (*Result, error) {
	if err := entitlements.Require(by, entitlements.NeedOrderFulfilment, "fulfilling an order by hand"); err != nil {
		return nil, err
	}
	if err := checkNote(orderID, note); err != nil {
		return nil, err
	}
	if licenseID != "" && !entitlements.ValidID(entitlements.PrefixLicense, licenseID) {
		return nil, entitlements.Invalid(map[string]string{"license": "a license ID (lic_…)"})
	}
	o, err := s.store.GetOrder(ctx, orderID)
	if err != nil {
		return nil, err
	}
	var res *Result
	err = s.store.WithOrderLock(ctx, o.CustomerID, lockWait, func() error {
		if err := s.store.ReleaseHeldOrder(ctx, orderID, licenseID, note, by); err != nil {
			return err
		}
		var err error
		if res, err = s.fulfilLocked(ctx, orderID, "staff "+by.Email); err != nil {
			s.rehold(ctx, orderID, err)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if res.Order.Status != entitlements.OrderFulfilled {
		return res, entitlements.Errorf(entitlements.ECONFLICT, "not fulfilled, the order stays %s: %s", res.Order.Status,
			strings.TrimPrefix(res.Order.ReviewReason, "not fulfilled automatically: "))
	}
	s.logf(ctx, slog.LevelInfo, "held order fulfilled by hand", "order_id", orderID, "license_id", res.License.ID, "actor", by.Email)
	return res, nil
}

// rehold puts an order released for fulfilment by hand back in the staff queue after
// the fulfilment failed for a reason that is not a refusal (the database, a signer):
// otherwise it would stay paid and reviewed, in no queue. A refusal was held again
// by fulfilLocked already (HoldOrder then changes nothing). It runs on a context of
// its own, as the request's may be what ended.
func (s *Service) rehold(ctx context.Context, orderID string, cause error) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	reason := "fulfilment by hand failed, try again: " + entitlements.ErrorMessage(cause)
	if _, err := s.store.HoldOrder(hctx, orderID, reason); err != nil {
		s.logf(ctx, slog.LevelError, "an order released for fulfilment by hand is out of the queue: fulfil it again by its page",
			"order_id", orderID, "err", err, "cause", cause)
	}
}

// RefundHeld refunds a held order through Stripe (the whole payment; idempotent per
// order, so a repeated call refunds once) and takes it out of the queue. Approvers
// and above, with a note. A fulfilled order is refunded in Stripe's dashboard: the
// refund's webhook then suspends its license and queues it.
func (s *Service) RefundHeld(ctx context.Context, orderID, note string, by *entitlements.Staff) (*entitlements.Order, error) {
	if err := entitlements.Require(by, entitlements.NeedOrderFulfilment, "refunding an order"); err != nil {
		return nil, err
	}
	if err := checkNote(orderID, note); err != nil {
		return nil, err
	}
	o, err := s.store.GetOrder(ctx, orderID)
	if err != nil {
		return nil, err
	}
	err = s.store.WithOrderLock(ctx, o.CustomerID, lockWait, func() error {
		cur, err := s.store.GetOrder(ctx, orderID)
		if err != nil {
			return err
		}
		if cur.Status != entitlements.OrderHeld {
			return entitlements.Errorf(entitlements.ECONFLICT, "order %s is %s: only a held order is refunded here (a fulfilled one is refunded in Stripe's dashboard)", orderID, cur.Status)
		}
		if cur.PaymentIntent == "" {
			return entitlements.Errorf(entitlements.ECONFLICT, "order %s has no payment recorded: refund it in Stripe's dashboard", orderID)
		}
		params := &stripe.RefundParams{PaymentIntent: stripe.String(cur.PaymentIntent)}
		params.AddMetadata("order_id", cur.ID)
		params.SetIdempotencyKey("refund-" + cur.ID)
		params.Context = ctx
		r, err := s.Stripe.Refunds.New(params)
		if err != nil {
			s.logf(ctx, slog.LevelError, "stripe: refund not created", "order_id", cur.ID, "err", err)
			return &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "Stripe did not take the refund: nothing changed; try again in a moment", Err: err}
		}
		return s.store.RefundedByStaff(ctx, cur.ID, r.ID, note, by)
	})
	if err != nil {
		return nil, err
	}
	s.logf(ctx, slog.LevelInfo, "held order refunded", "order_id", orderID, "actor", by.Email)
	return s.store.GetOrder(ctx, orderID)
}

func checkNote(orderID, note string) error {
	f := map[string]string{}
	if !entitlements.ValidID(entitlements.PrefixOrder, orderID) {
		f["id"] = "an order ID (ord_…)"
	}
	if strings.TrimSpace(note) == "" {
		f["note"] = "say what was decided, for the audit trail"
	}
	return entitlements.Invalid(f)
}

// Unmatched lists the Stripe events that matched no order (kept for staff once
// Stripe stopped redelivering them), oldest first.
func (s *Service) Unmatched(ctx context.Context, limit int, by *entitlements.Staff) ([]*entitlements.PendingPaymentEvent, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading unmatched payment events"); err != nil {
		return nil, err
	}
	return s.store.UnmatchedEvents(ctx, limit)
}
