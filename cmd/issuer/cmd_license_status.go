package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/staffapi"
	"github.com/metrum/licensing/verify"
)

func licRevoke(ctx context.Context, a *app, args []string) error {
	return licStatus(ctx, a, args, entitlements.ActionRevoke,
		`Revokes a license: final, listed as revoked in the next revocation bundle (published
within a minute by the running issuer, or now with 'issuer bundle publish').

The licenses it replaced that still work in their changeover are revoked with it, at
once (a chargeback of a top-up must not leave the renewal it replaced working); --only
revokes this license alone, and says when the others stop. Asks you to type the
license ID to confirm, after naming every license it blocks; --yes skips that
(scripts).`)
}

func licSuspend(ctx context.Context, a *app, args []string) error {
	return licStatus(ctx, a, args, entitlements.ActionSuspend,
		`Suspends a license (a commercial or support hold): listed as suspended in the next
revocation bundle until reinstated. The licenses it replaced that still work in their
changeover are suspended with it, unless --only. Asks for confirmation; --yes skips it.`)
}

func licReinstate(ctx context.Context, a *app, args []string) error {
	return licStatus(ctx, a, args, entitlements.ActionReinstate,
		`Lifts a suspension: the next revocation bundle no longer lists the license. The
licenses suspended with it return to superseded by their successors.`)
}

func licStatus(ctx context.Context, a *app, args []string, action, help string) error {
	usage := "license " + action + " --id lic_… --reason TEXT [--effective-at RFC3339] [--yes] [--as STAFF] [--json]"
	if action != entitlements.ActionReinstate {
		usage = "license " + action + " --id lic_… --reason TEXT [--only] [--effective-at RFC3339] [--yes] [--as STAFF] [--json]"
	}
	fs := a.flags("license "+action, usage, help)
	id := fs.String("id", "", "license ID (required)")
	reason := fs.String("reason", "", "why, shown in revocation bundles (required)")
	eff := fs.String("effective-at", "", "when it takes effect (default now)")
	yes := fs.Bool("yes", false, "don't ask for confirmation")
	only := new(bool)
	if action != entitlements.ActionReinstate {
		only = fs.Bool("only", false, "change this license alone: the licenses it replaced keep working until their changeover ends")
	}
	as, asJSON := actorFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	at, err := optTime(fs, "effective-at", *eff)
	if err != nil {
		return err
	}
	svc, err := a.api(*as)
	if err != nil {
		return err
	}
	if action != entitlements.ActionReinstate && !*yes {
		pre, err := svc.StatusPreview(ctx, *id, action)
		if err != nil {
			return err
		}
		l := pre.License
		fmt.Fprintf(a.stderr, "%s %s (%s, %s, customer %s)", action, l.ID, l.SKU, l.StateAt(time.Now()).Label(), l.CustomerName)
		for _, p := range pre.Chained {
			if *only {
				fmt.Fprintf(a.stderr, "\n  %s (%s), which it replaced, keeps working until %s", p.ID, p.SKU, verify.FormatTime(p.StatusEffectiveAt))
			} else {
				fmt.Fprintf(a.stderr, "\n  and with it %s (%s), which it replaced (in changeover until %s)", p.ID, p.SKU, verify.FormatTime(p.StatusEffectiveAt))
			}
		}
		fmt.Fprint(a.stderr, "\nType the license ID to confirm: ")
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if strings.TrimSpace(line) != l.ID {
			return errors.New("not confirmed: nothing changed (type the license ID, or pass --yes)")
		}
	}
	res, err := svc.ChangeStatus(ctx, staffapi.StatusRequest{LicenseID: *id, Action: action, Reason: *reason, EffectiveAt: at, Only: *only})
	if err != nil {
		return err
	}
	if *asJSON {
		chained := make([]map[string]any, 0, len(res.Chained))
		for _, p := range res.Chained {
			chained = append(chained, licJSON(p))
		}
		out := licJSON(res.License)
		out["chained"] = chained
		return a.printJSON(out)
	}
	l := res.License
	fmt.Fprintf(a.stdout, "license %s is %s", l.ID, l.Status)
	if !l.StatusEffectiveAt.IsZero() {
		fmt.Fprintf(a.stdout, " (effective %s)", verify.FormatTime(l.StatusEffectiveAt))
	}
	fmt.Fprintln(a.stdout, "; the next revocation bundle carries it")
	for _, p := range res.Chained {
		fmt.Fprintf(a.stdout, "license %s (%s) is %s with it\n", p.ID, p.SKU, p.Status)
	}
	return nil
}

func licRestorePrevious(ctx context.Context, a *app, args []string) error {
	fs := a.flags("license restore-previous", "license restore-previous --successor lic_… --reason TEXT [--as STAFF] [--json]",
		`After a paid renewal or top-up was refunded or disputed (and so suspended or revoked),
makes the license it replaced active again: its supersession is lifted, the next
revocation bundle stops listing it, and it may be renewed or topped up anew. The
licenses suspended with the successor return to superseded by the restored one.
Needs the approver role; audited as license.restore.`)
	succ := fs.String("successor", "", "the refunded or disputed license (required)")
	reason := fs.String("reason", "", "why (required)")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	l, err := svc.RestorePrevious(ctx, *succ, *reason)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(licJSON(l))
	}
	fmt.Fprintf(a.stdout, "license %s (%s) is active again; %s no longer replaces it, and the next revocation bundle stops listing it\n", l.ID, l.SKU, *succ)
	return nil
}
