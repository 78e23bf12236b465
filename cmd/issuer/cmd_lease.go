package main

import (
	"context"
	"fmt"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

const leaseHelp = `Usage: issuer lease <slots|history> --license lic_… [flags]

  slots     the license's instance slots: which hosts hold a lease, until when
  history   every grant, renewal, refusal (with its reason) and release, newest first

Give a lease-required license a new lease token with 'issuer license rotate-lease-token'.
`

func cmdLease(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "lease", args, map[string]cmdFunc{"slots": leaseSlots, "history": leaseHistory}, leaseHelp)
}

func leaseSlots(ctx context.Context, a *app, args []string) error {
	fs := a.flags("lease slots", "lease slots --license lic_… [--json]", "Lists a license's instance slots, live ones first.")
	id := fs.String("license", "", "license ID (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	if _, err := svc.GetLicense(ctx, *id); err != nil {
		return err
	}
	slots, err := svc.ListLeases(ctx, *id)
	if err != nil {
		return err
	}
	now := time.Now()
	return printListing(a, *asJSON, slots, listing[*entitlements.Lease]{
		empty:  "no host has taken a lease on this license yet",
		header: "INSTANCE\tLEASE\tSTATE\tRENEWED\tEXPIRES",
		row: func(s *entitlements.Lease) string {
			state := "live"
			switch {
			case s.ReleasedAt != nil:
				state = "released"
			case !s.ExpiresAt.After(now):
				state = "expired"
			}
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", s.Fingerprint, s.LeaseID, state, verify.FormatTime(s.RenewedAt), verify.FormatTime(s.ExpiresAt))
		},
		json: func(s *entitlements.Lease) map[string]any {
			return map[string]any{"instance_fingerprint": s.Fingerprint, "lease_id": s.LeaseID, "granted_at": verify.FormatTime(s.GrantedAt),
				"renewed_at": verify.FormatTime(s.RenewedAt), "expires_at": verify.FormatTime(s.ExpiresAt),
				"live": s.ReleasedAt == nil && s.ExpiresAt.After(now), "released_at": optTimeJSON(s.ReleasedAt)}
		},
	})
}

func leaseHistory(ctx context.Context, a *app, args []string) error {
	fs := a.flags("lease history", "lease history --license lic_… [--before EVENT_ID] [--limit N] [--json]",
		"Lists a license's lease records newest first; --before pages back.")
	id := fs.String("license", "", "license ID (required)")
	before := fs.Int64("before", 0, "page: records older than this ID")
	limit := fs.Int("limit", 50, "how many (at most 500)")
	asJSON := fs.Bool("json", false, "print JSON")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	events, err := svc.ListLeaseEvents(ctx, *id, *before, *limit)
	if err != nil {
		return err
	}
	return printListing(a, *asJSON, events, listing[*entitlements.LeaseEvent]{
		empty:  "no lease records for this license",
		header: "ID\tAT\tINSTANCE\tOUTCOME\tREASON\tLEASE",
		row: func(e *entitlements.LeaseEvent) string {
			return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s", e.ID, verify.FormatTime(e.At), e.Fingerprint, e.Outcome, e.Reason, e.LeaseID)
		},
		json: func(e *entitlements.LeaseEvent) map[string]any {
			return map[string]any{"id": e.ID, "at": verify.FormatTime(e.At), "instance_fingerprint": e.Fingerprint, "lease_id": e.LeaseID,
				"outcome": e.Outcome, "reason": e.Reason, "expires_at": optTimeJSON(e.ExpiresAt)}
		},
		full: len(events) == *limit,
		more: func(e *entitlements.LeaseEvent) string { return fmt.Sprintf("--before %d", e.ID) },
	})
}
