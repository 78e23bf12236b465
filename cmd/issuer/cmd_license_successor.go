package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/staffapi"
	"github.com/metrum/licensing/verify"
)

// successorFlags are the flags renew, replace and top-up share.
type successorFlags struct {
	id, template, starts, ends, fp, contract, as *string
	changeover                                   *time.Duration
	limits                                       kvFlag
	features                                     listFlag
	asJSON                                       *bool
	fs                                           *flag.FlagSet
}

func newSuccessorFlags(a *app, name, synopsis, help string, withTemplate bool) *successorFlags {
	f := &successorFlags{fs: a.flags(name, synopsis, help), limits: kvFlag{}}
	f.id = f.fs.String("id", "", "the license to supersede (required)")
	f.template = new(string)
	if withTemplate {
		f.template = f.fs.String("template", "", "template")
	}
	f.starts = f.fs.String("starts", "", "start, RFC 3339 (default: see above)")
	f.ends = f.fs.String("ends", "", "end, RFC 3339 (default: see above)")
	f.fp = f.fs.String("instance-fingerprint", "", "bind to this instance (default: the license's binding)")
	f.contract = f.fs.String("contract", "", "contract reference (default: the license's)")
	f.changeover = f.fs.Duration("changeover", -1, "how long the old license keeps working after the new one issues (default issuer.changeover)")
	f.fs.Var(f.limits, "limit", "override a limit, NAME=VALUE (repeatable)")
	f.fs.Var(&f.features, "feature", "set the feature list (repeatable)")
	f.as = f.fs.String("as", "", "staff email to act as (default $ISSUER_AS)")
	f.asJSON = f.fs.Bool("json", false, "print JSON")
	return f
}

func (f *successorFlags) input(kind string) (entitlements.SuccessorInput, error) {
	in := entitlements.SuccessorInput{Kind: kind, LicenseID: *f.id, Template: *f.template, ContractRef: *f.contract}
	var err error
	if in.StartsAt, err = optTime(f.fs, "starts", *f.starts); err != nil {
		return in, err
	}
	if in.EndsAt, err = optTime(f.fs, "ends", *f.ends); err != nil {
		return in, err
	}
	if *f.fp != "" {
		in.InstanceFingerprint = f.fp
	}
	if *f.changeover >= 0 {
		in.Changeover = f.changeover
	}
	if len(f.limits) > 0 || len(f.features) > 0 {
		in.Overrides = &entitlements.Overrides{Features: f.features, Limits: f.limits}
	}
	return in, nil
}

func runSuccessor(ctx context.Context, a *app, f *successorFlags, kind string, args []string) error {
	if err := parse(f.fs, args); err != nil {
		return err
	}
	in, err := f.input(kind)
	if err != nil {
		return err
	}
	svc, err := a.api(*f.as)
	if err != nil {
		return err
	}
	e, err := svc.CreateSuccessor(ctx, in)
	if err != nil {
		return err
	}
	if *f.asJSON {
		return a.printJSON(entJSON(e))
	}
	fmt.Fprintf(a.stdout, "opened %s %s for %s (%s@%d, %s → %s)\nnext: another approver runs `issuer entitlement approve --id %s`, then `issuer license issue --entitlement %s`\n",
		kind, e.ID, in.LicenseID, e.TemplateName, e.TemplateVersion, verify.FormatTime(e.StartsAt), verify.FormatTime(e.EndsAt), e.ID, e.ID)
	return nil
}

func licRenew(ctx context.Context, a *app, args []string) error {
	f := newSuccessorFlags(a, "license renew", "license renew (--id lic_… [flags] | --expiring-within DURATION [--product P]) [--json]",
		`Opens a renewal: a draft entitlement for a new license (new license_id) that
supersedes the old one. Default term: from now until the old expiry plus the template's
term (fixed-term templates: exactly their term from now). The template defaults to the
license's own, newest version; --template moves to another of the product's.
--expiring-within opens a renewal for every active license that ends within that time,
with progress on stderr; licenses that already have one open are skipped.`, true)
	within := f.fs.Duration("expiring-within", 0, "renew every active license ending within this duration")
	product := f.fs.String("product", "", "with --expiring-within: only this product")
	if !hasFlag(args, "expiring-within") {
		return runSuccessor(ctx, a, f, entitlements.KindRenewal, args)
	}
	if err := parse(f.fs, args); err != nil {
		return err
	}
	if *f.id != "" {
		fmt.Fprintln(a.stderr, "give --id or --expiring-within, not both")
		return errUsage
	}
	svc, err := a.api(*f.as)
	if err != nil {
		return err
	}
	var rows []map[string]any
	last, err := svc.RenewExpiring(ctx, *product, *within, func(p staffapi.Progress) {
		row := map[string]any{"license_id": p.ID}
		if p.Error != "" {
			row["error"] = p.Error
			fmt.Fprintf(a.stderr, "[%d/%d] %s: skipped: %s\n", p.N, p.Of, p.ID, p.Error)
		} else {
			row["entitlement_id"] = p.Opened.ID
			fmt.Fprintf(a.stderr, "[%d/%d] %s → renewal %s\n", p.N, p.Of, p.ID, p.Opened.ID)
		}
		rows = append(rows, row)
	})
	if err != nil {
		return err
	}
	opened := last.Count
	if *f.asJSON {
		if rows == nil {
			rows = []map[string]any{}
		}
		return a.printJSON(map[string]any{"opened": opened, "licenses": rows})
	}
	fmt.Fprintf(a.stdout, "opened %d renewal(s) of %d license(s) expiring within %s\n", opened, len(rows), *within)
	if opened > 0 {
		fmt.Fprintln(a.stdout, "next: an approver runs `issuer entitlement approve --all-drafts --kind renewal`, then `issuer license issue --all-approved`")
	}
	return nil
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "-"+name || a == "--"+name || strings.HasPrefix(a, "--"+name+"=") || strings.HasPrefix(a, "-"+name+"=") {
			return true
		}
	}
	return false
}

func licReplace(ctx context.Context, a *app, args []string) error {
	f := newSuccessorFlags(a, "license replace", "license replace --id lic_… [--instance-fingerprint FP] [--limit N=V]… [--feature F]… [flags] [--json]",
		`Opens a replacement: a new license (new license_id) with the same template version
and term as the old one, except what you change: corrected customer data (update the
customer first), a new instance scope, other overrides, re-signing with the current
(rotated) key, or a lost file. The old one becomes superseded after the changeover.`, false)
	return runSuccessor(ctx, a, f, entitlements.KindReplacement, args)
}

func licTopUp(ctx context.Context, a *app, args []string) error {
	f := newSuccessorFlags(a, "license top-up", "license top-up --id lic_… --template credit-pack-5m|credit-pack-25m [flags] [--json]",
		`Opens a credit-pack top-up: a replacement license (new license_id) with the pack's
license-wide token budget and otherwise the old license's features, limits, grace,
lease policy and instance binding, running until the old license's expiry.`, true)
	return runSuccessor(ctx, a, f, entitlements.KindTopUp, args)
}
