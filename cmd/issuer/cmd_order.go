package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

const orderHelp = `Usage: issuer order <queue|show|fulfil|refund|review|unmatched> [flags]

  queue      self-service orders waiting for staff: held (paid, not applied
             automatically), refunded, disputed, partly refunded
  show       one order
  fulfil     fulfil a held order by hand (optionally for another license)
  refund     refund a held order through Stripe
  review     take a refunded or disputed order out of the queue, with a note
  unmatched  Stripe events that matched no order

docs/purchase.md has every event and order state.
`

func cmdOrder(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "order", args, map[string]cmdFunc{"queue": orderQueue, "show": orderShow, "review": orderReview,
		"fulfil": orderFulfil, "refund": orderRefund, "unmatched": orderUnmatched}, orderHelp)
}

func orderJSON(o *entitlements.Order) map[string]any {
	return map[string]any{"id": o.ID, "customer_id": o.CustomerID, "item": o.Item, "kind": o.Kind, "template": o.Template,
		"amount": o.Amount, "currency": o.Currency, "license_id": o.LicenseID, "status": o.Status,
		"fulfilled_license_id": o.FulfilledLicenseID, "checkout_session_id": o.CheckoutSessionID, "payment_intent": o.PaymentIntent, "review_reason": o.ReviewReason,
		"reviewed_by": o.ReviewedBy, "created_at": verify.FormatTime(o.CreatedAt), "updated_at": verify.FormatTime(o.UpdatedAt)}
}

func orderQueue(ctx context.Context, a *app, args []string) error {
	fs := a.flags("order queue", "order queue [--json]",
		`Lists self-service orders waiting for staff, oldest first, with the reason:
  held       paid, but not applied automatically (the license it was for is no
             longer current, a draft is in the way): 'issuer order fulfil' or
             'issuer order refund'
  refunded, disputed
             a refund or dispute suspended their license (never a silent revoke):
             decide with 'issuer license reinstate', 'issuer license revoke' or
             'issuer license restore-previous', then 'issuer order review'
  (any)      a partial refund suspended nothing: decide, then 'issuer order review'`)
	asJSON := fs.Bool("json", false, "print JSON")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	list, err := svc.ReviewQueue(ctx)
	if err != nil {
		return err
	}
	return printListing(a, *asJSON, list, listing[*entitlements.Order]{
		empty:  "no orders wait for review",
		header: "ORDER\tSTATUS\tLICENSE\tCUSTOMER\tREASON",
		row: func(o *entitlements.Order) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", o.ID, o.Status, o.FulfilledLicenseID, o.CustomerID, o.ReviewReason)
		},
		json: orderJSON,
	})
}

func orderShow(ctx context.Context, a *app, args []string) error {
	fs := a.flags("order show", "order show --id ord_… [--json]", "Shows one self-service order.")
	id := fs.String("id", "", "order ID (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	o, err := svc.GetOrder(ctx, *id)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(orderJSON(o))
	}
	fmt.Fprintf(a.stdout, "order %s: %s %s for %s, %d %s, %s; license %s\n", o.ID, o.Kind, o.Item, o.CustomerID, o.Amount, o.Currency, o.Status, o.FulfilledLicenseID)
	if o.ReviewReason != "" {
		fmt.Fprintf(a.stdout, "review: %s (reviewed by %q)\n", o.ReviewReason, o.ReviewedBy)
	}
	if o.Status == entitlements.OrderHeld {
		fmt.Fprintf(a.stdout, "held: paid and not fulfilled; fulfil it by hand (issuer order fulfil --id %s --note \"…\" [--license lic_…]) or refund it (issuer order refund --id %s --note \"…\")\n", o.ID, o.ID)
	}
	// A refunded or disputed renewal or top-up: the license it replaced may be given
	// back (docs/lifecycle.md, "Restore the previous license").
	if o.FulfilledLicenseID != "" && (o.Kind == entitlements.OrderRenewal || o.Kind == entitlements.OrderTopUp) && o.ReviewReason != "" {
		if l, err := svc.GetLicense(ctx, o.FulfilledLicenseID); err == nil && l.Supersedes != "" && !l.SupersessionLifted &&
			(l.Status == entitlements.LicenseSuspended || l.Status == entitlements.LicenseRevoked) {
			fmt.Fprintf(a.stdout, "the license it replaced, %s, can be restored: issuer license restore-previous --successor %s --reason \"…\"\n",
				l.Supersedes, l.ID)
		}
	}
	return nil
}

func orderReview(ctx context.Context, a *app, args []string) error {
	fs := a.flags("order review", "order review --id ord_… --note TEXT [--as STAFF] [--json]",
		"Takes an order out of the review queue, with a note for the audit trail. Approvers and above.")
	id := fs.String("id", "", "order ID (required)")
	note := fs.String("note", "", "what was decided (required)")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	if err := svc.ReviewOrder(ctx, *id, *note); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(map[string]any{"id": *id, "reviewed": true})
	}
	fmt.Fprintf(a.stdout, "order %s reviewed\n", *id)
	return nil
}

func orderFulfil(ctx context.Context, a *app, args []string) error {
	fs := a.flags("order fulfil", "order fulfil --id ord_… --note TEXT [--license lic_…] [--as STAFF] [--json]",
		`Fulfils a held order by hand, as the webhook would have: a renewal or credit pack
applies to the current license of the line it was bought for, or to --license (one
of the customer's current licenses). Refused again, it stays held with the new
reason. Approvers and above.`)
	id := fs.String("id", "", "order ID (required)")
	lic := fs.String("license", "", "apply a renewal or top-up to this license instead")
	note := fs.String("note", "", "why, for the audit trail (required)")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	res, err := svc.FulfilOrder(ctx, *id, *lic, *note)
	if err != nil {
		return err
	}
	if *asJSON {
		out := orderJSON(res.Order)
		out["license"] = licJSON(res.License)
		return a.printJSON(out)
	}
	fmt.Fprintf(a.stdout, "order %s fulfilled: license %s (%s) issued, until %s\n", res.Order.ID, res.License.ID, res.License.SKU,
		verify.FormatTime(res.License.ExpiresAt))
	return nil
}

func orderRefund(ctx context.Context, a *app, args []string) error {
	fs := a.flags("order refund", "order refund --id ord_… --note TEXT [--yes] [--as STAFF] [--json]",
		`Refunds a held order's whole payment through Stripe and takes it out of the queue;
nothing is issued. Asks for confirmation (type the order ID); --yes skips it. A
fulfilled order is refunded in Stripe's dashboard: its refund webhook suspends the
license. Approvers and above.`)
	id := fs.String("id", "", "order ID (required)")
	note := fs.String("note", "", "why, for the audit trail (required)")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	if !*yes {
		o, err := svc.GetOrder(ctx, *id)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "refund order %s: %s, %s %s to customer %s (%s)\nType the order ID to confirm: ",
			o.ID, o.Item, money(o.Amount), o.Currency, o.CustomerID, o.Status)
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if strings.TrimSpace(line) != o.ID {
			return errors.New("not confirmed: nothing changed (type the order ID, or pass --yes)")
		}
	}
	o, err := svc.RefundOrder(ctx, *id, *note)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(orderJSON(o))
	}
	fmt.Fprintf(a.stdout, "order %s refunded (%s %s); nothing was issued\n", o.ID, money(o.Amount), o.Currency)
	return nil
}

func money(minor int64) string { return fmt.Sprintf("%d.%02d", minor/100, minor%100) }

func orderUnmatched(ctx context.Context, a *app, args []string) error {
	fs := a.flags("order unmatched", "order unmatched [--json]",
		`Lists signed Stripe events that matched no order, oldest first. Each was answered
503 so Stripe delivered it again; a refund or dispute here is applied when its order
records the payment. "kept" ones are past Stripe's retry period: look them up in
Stripe's dashboard.`)
	asJSON := fs.Bool("json", false, "print JSON")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	list, err := svc.UnmatchedEvents(ctx)
	if err != nil {
		return err
	}
	return printListing(a, *asJSON, list, listing[*entitlements.PendingPaymentEvent]{
		empty:  "every Stripe event matched its order",
		header: "EVENT\tTYPE\tPAYMENT\tDELIVERIES\tFIRST SEEN\tSTATE\tREASON",
		row: func(e *entitlements.PendingPaymentEvent) string {
			state := "retrying"
			if e.GivenUp {
				state = "kept"
			}
			return fmt.Sprintf("%s\t%s\t%s\t%d\t%s\t%s\t%s", e.EventID, e.Type, e.PaymentIntent+e.OrderRef, e.Deliveries,
				verify.FormatTime(e.FirstSeenAt), state, e.Reason)
		},
		json: func(e *entitlements.PendingPaymentEvent) map[string]any {
			return map[string]any{"event_id": e.EventID, "type": e.Type, "payment_intent": e.PaymentIntent, "order_ref": e.OrderRef,
				"checkout_session_id": e.CheckoutSessionID, "effect": e.Effect, "reason": e.Reason, "deliveries": e.Deliveries,
				"first_seen_at": verify.FormatTime(e.FirstSeenAt), "last_seen_at": verify.FormatTime(e.LastSeenAt), "given_up": e.GivenUp}
		},
	})
}
