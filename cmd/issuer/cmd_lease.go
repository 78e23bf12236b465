package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

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
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, err := a.open(ctx); err != nil {
		return err
	}
	if _, err := a.store.GetLicense(ctx, *id); err != nil {
		return err
	}
	slots, err := a.store.ListLeases(ctx, *id)
	if err != nil {
		return err
	}
	now := time.Now()
	if *asJSON {
		out := []map[string]any{}
		for _, s := range slots {
			m := map[string]any{"instance_fingerprint": s.Fingerprint, "lease_id": s.LeaseID, "granted_at": verify.FormatTime(s.GrantedAt),
				"renewed_at": verify.FormatTime(s.RenewedAt), "expires_at": verify.FormatTime(s.ExpiresAt),
				"live": s.ReleasedAt == nil && s.ExpiresAt.After(now), "released_at": nil}
			if s.ReleasedAt != nil {
				m["released_at"] = verify.FormatTime(*s.ReleasedAt)
			}
			out = append(out, m)
		}
		return a.printJSON(out)
	}
	if len(slots) == 0 {
		fmt.Fprintln(a.stdout, "no host has taken a lease on this license yet")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tLEASE\tSTATE\tRENEWED\tEXPIRES")
	for _, s := range slots {
		state := "live"
		switch {
		case s.ReleasedAt != nil:
			state = "released"
		case !s.ExpiresAt.After(now):
			state = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Fingerprint, s.LeaseID, state, verify.FormatTime(s.RenewedAt), verify.FormatTime(s.ExpiresAt))
	}
	return tw.Flush()
}

func leaseHistory(ctx context.Context, a *app, args []string) error {
	fs := a.flags("lease history", "lease history --license lic_… [--before EVENT_ID] [--limit N] [--json]",
		"Lists a license's lease records newest first; --before pages back.")
	id := fs.String("license", "", "license ID (required)")
	before := fs.Int64("before", 0, "page: records older than this ID")
	limit := fs.Int("limit", 50, "how many (at most 500)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, err := a.open(ctx); err != nil {
		return err
	}
	events, err := a.store.ListLeaseEvents(ctx, *id, *before, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		out := []map[string]any{}
		for _, e := range events {
			m := map[string]any{"id": e.ID, "at": verify.FormatTime(e.At), "instance_fingerprint": e.Fingerprint, "lease_id": e.LeaseID,
				"outcome": e.Outcome, "reason": e.Reason, "expires_at": nil}
			if e.ExpiresAt != nil {
				m["expires_at"] = verify.FormatTime(*e.ExpiresAt)
			}
			out = append(out, m)
		}
		return a.printJSON(out)
	}
	if len(events) == 0 {
		fmt.Fprintln(a.stdout, "no lease records for this license")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tINSTANCE\tOUTCOME\tREASON\tLEASE")
	for _, e := range events {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.ID, verify.FormatTime(e.At), e.Fingerprint, e.Outcome, e.Reason, e.LeaseID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(events) == *limit {
		fmt.Fprintf(a.stdout, "more: --before %d\n", events[len(events)-1].ID)
	}
	return nil
}
