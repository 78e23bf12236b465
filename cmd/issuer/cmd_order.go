package main

import (
	"context"
	"fmt"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

const orderHelp = `Usage: issuer order <queue|show|review> [flags]

  queue    self-service orders waiting for staff review (refunds, disputes)
  show     one order
  review   take an order out of the queue, with a note
`

func cmdOrder(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "order", args, map[string]cmdFunc{"queue": orderQueue, "show": orderShow, "review": orderReview}, orderHelp)
}

func orderJSON(o *entitlements.Order) map[string]any {
	return map[string]any{"id": o.ID, "customer_id": o.CustomerID, "item": o.Item, "kind": o.Kind, "template": o.Template,
		"amount": o.Amount, "currency": o.Currency, "license_id": o.LicenseID, "status": o.Status,
		"fulfilled_license_id": o.FulfilledLicenseID, "checkout_session_id": o.CheckoutSessionID, "review_reason": o.ReviewReason,
		"reviewed_by": o.ReviewedBy, "created_at": verify.FormatTime(o.CreatedAt), "updated_at": verify.FormatTime(o.UpdatedAt)}
}

func orderQueue(ctx context.Context, a *app, args []string) error {
	fs := a.flags("order queue", "order queue [--json]",
		`Lists self-service orders waiting for staff review, oldest first: a refund or a dispute
suspended their license (never a silent revoke). Decide with 'issuer license reinstate'
or 'issuer license revoke', then 'issuer order review'.`)
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
