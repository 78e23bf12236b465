package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

const entitlementHelp = `Usage: issuer entitlement <create|approve|reject|cancel|list|show> [flags]

  create    open a draft entitlement from a template
  approve   approve drafts (maker-checker: not by their creator)
  reject    reject drafts, with a reason
  cancel    withdraw a draft or approved entitlement, with a reason
  list      list entitlements, newest first
  show      show one entitlement

Renewals, replacements and top-ups are entitlements too: open them with
'issuer license renew | replace | top-up', then approve and issue as usual.
`

func cmdEntitlement(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "entitlement", args, map[string]cmdFunc{
		"create": entCreate, "approve": entApprove, "reject": entReject, "cancel": entCancel, "list": entList, "show": entShow,
	}, entitlementHelp)
}

// kvFlag collects repeated NAME=VALUE integer flags.
type kvFlag map[string]int64

func (k kvFlag) String() string { return fmt.Sprint(map[string]int64(k)) }
func (k kvFlag) Set(s string) error {
	name, val, ok := strings.Cut(s, "=")
	n, err := strconv.ParseInt(val, 10, 64)
	if !ok || name == "" || err != nil || n < 0 {
		return fmt.Errorf("want NAME=NON_NEGATIVE_INTEGER, got %q", s)
	}
	k[name] = n
	return nil
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func entCreate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("entitlement create", "entitlement create --customer cus_… --template NAME [flags]",
		`Opens a draft entitlement from the newest version of a template. The term defaults
to the template's (start now). Overrides must be allowed by the template; see
'issuer templates'.`)
	cust := fs.String("customer", "", "customer ID (required)")
	tmpl := fs.String("template", "", "template name, e.g. enterprise-annual (required)")
	starts := fs.String("starts", "", "start, RFC 3339 (default now)")
	ends := fs.String("ends", "", "end, RFC 3339 (default start + the template's term)")
	fp := fs.String("instance-fingerprint", "", "bind the license to one instance")
	contract := fs.String("contract", "", "contract reference")
	limits := kvFlag{}
	fs.Var(limits, "limit", "override a limit, NAME=VALUE (repeatable)")
	var features listFlag
	fs.Var(&features, "feature", "set the feature list (repeatable; replaces the template's)")
	grace := fs.Int64("grace-seconds", -1, "override the grace period")
	as, asJSON := actorFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	in := entitlements.EntitlementInput{CustomerID: *cust, Template: *tmpl, InstanceFingerprint: *fp, ContractRef: *contract,
		Overrides: entitlements.Overrides{Features: features, Limits: limits}}
	if len(limits) == 0 {
		in.Overrides.Limits = nil
	}
	if *grace >= 0 {
		in.Overrides.GracePeriodSeconds = grace
	}
	var err error
	if in.StartsAt, err = optTime(fs, "starts", *starts); err != nil {
		return err
	}
	if in.EndsAt, err = optTime(fs, "ends", *ends); err != nil {
		return err
	}
	svc, err := a.api(*as)
	if err != nil {
		return err
	}
	e, err := svc.CreateEntitlement(ctx, in)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(entJSON(e))
	}
	fmt.Fprintf(a.stdout, "created draft entitlement %s (%s@%d, %s → %s)\nnext: another approver runs `issuer entitlement approve --id %s`\n",
		e.ID, e.TemplateName, e.TemplateVersion, e.StartsAt.Format(time.RFC3339), e.EndsAt.Format(time.RFC3339), e.ID)
	return nil
}

func optTime(fs *flag.FlagSet, name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		fmt.Fprintf(fs.Output(), "--%s: %v\n", name, err)
		return time.Time{}, errUsage
	}
	return t, nil
}

func entJSON(e *entitlements.Entitlement) map[string]any {
	return map[string]any{"id": e.ID, "customer_id": e.CustomerID, "product": e.Product, "template": e.TemplateName,
		"template_version": e.TemplateVersion, "state": e.State, "kind": e.Kind, "starts_at": verify.FormatTime(e.StartsAt),
		"ends_at": verify.FormatTime(e.EndsAt), "instance_fingerprint": e.InstanceFingerprint, "contract_ref": e.ContractRef,
		"source": e.Source, "supersedes": e.Supersedes, "changeover_seconds": e.ChangeoverSeconds, "created_by": e.CreatedBy,
		"decided_by": e.DecidedBy, "decision_reason": e.DecisionReason, "overrides": e.Overrides}
}

func entDecide(ctx context.Context, a *app, args []string, approve bool) error {
	verb := map[bool]string{true: "approve", false: "reject"}[approve]
	fs := a.flags("entitlement "+verb, "entitlement "+verb+" (--id ent_… [--id …] | --all-drafts [--kind KIND]) [--reason TEXT] [--as STAFF] [--json]",
		`Decides draft entitlements. Needs the approver role; with maker-checker on, the
creator of an entitlement can't decide it. Several IDs (or every draft, optionally of
one kind: new, renewal, replacement, top-up) are decided one by one with progress on
stderr; one failure does not stop the rest, and the command fails if any did.`)
	var ids listFlag
	fs.Var(&ids, "id", "entitlement ID (repeatable)")
	all := fs.Bool("all-drafts", false, "decide every draft (after a batch renewal, say)")
	kind := fs.String("kind", "", "with --all-drafts: only this kind")
	reason := fs.String("reason", "", "why (required to reject)")
	as, asJSON := actorFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if (len(ids) == 0) == !*all {
		fmt.Fprintln(a.stderr, "give --id (one or more) or --all-drafts")
		return errUsage
	}
	svc, err := a.api(*as)
	if err != nil {
		return err
	}
	if *all {
		drafts, err := svc.ListEntitlements(ctx, entitlements.EntitlementFilter{State: entitlements.StateDraft, Kind: *kind, Limit: 500})
		if err != nil {
			return err
		}
		for _, e := range drafts {
			ids = append(ids, e.ID)
		}
	}
	out, failed := []map[string]any{}, 0
	for i, id := range ids {
		var e *entitlements.Entitlement
		if approve {
			e, err = svc.Approve(ctx, id)
		} else {
			e, err = svc.Reject(ctx, id, *reason)
		}
		if err != nil {
			failed++
			if len(ids) == 1 {
				return err
			}
			fmt.Fprintf(a.stderr, "[%d/%d] %s: %s\n", i+1, len(ids), id, describe(err))
			out = append(out, map[string]any{"id": id, "error": describe(err)})
			continue
		}
		if len(ids) > 1 {
			fmt.Fprintf(a.stderr, "[%d/%d] %s %s\n", i+1, len(ids), e.ID, e.State)
		}
		out = append(out, entJSON(e))
		if !*asJSON {
			fmt.Fprintf(a.stdout, "entitlement %s is %s\n", e.ID, e.State)
		}
	}
	if *asJSON {
		if len(ids) == 1 {
			return a.printJSON(out[0])
		}
		if err := a.printJSON(out); err != nil {
			return err
		}
	} else if approve && len(ids) == 1 {
		fmt.Fprintf(a.stdout, "next: `issuer license issue --entitlement %s`\n", ids[0])
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d entitlements could not be %sd", failed, len(ids), verb)
	}
	if len(ids) == 0 && !*asJSON {
		fmt.Fprintln(a.stdout, "no drafts to decide")
	}
	return nil
}

func entApprove(ctx context.Context, a *app, args []string) error {
	return entDecide(ctx, a, args, true)
}
func entReject(ctx context.Context, a *app, args []string) error {
	return entDecide(ctx, a, args, false)
}

func entCancel(ctx context.Context, a *app, args []string) error {
	fs := a.flags("entitlement cancel", "entitlement cancel --id ent_… --reason TEXT [--as STAFF] [--json]",
		"Withdraws a draft or approved entitlement that has not issued (its creator, or an approver).")
	id := fs.String("id", "", "entitlement ID (required)")
	reason := fs.String("reason", "", "why (required)")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	e, err := svc.Cancel(ctx, *id, *reason)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(entJSON(e))
	}
	fmt.Fprintf(a.stdout, "entitlement %s is cancelled\n", e.ID)
	return nil
}

func entList(ctx context.Context, a *app, args []string) error {
	fs := a.flags("entitlement list", "entitlement list [--state STATE] [--kind KIND] [--customer cus_…] [--before ent_…] [--limit N] [--json]",
		"Lists entitlements, newest first. For the next page pass --before with the last ID shown.")
	state := fs.String("state", "", "draft, approved, rejected, cancelled or issued")
	kind := fs.String("kind", "", "new, renewal, replacement or top-up")
	cust := fs.String("customer", "", "only this customer's")
	before := fs.String("before", "", "page: entitlements older than this ID")
	limit := fs.Int("limit", 50, "how many (at most 500)")
	asJSON := fs.Bool("json", false, "print JSON")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	list, err := svc.ListEntitlements(ctx, entitlements.EntitlementFilter{State: *state, Kind: *kind, CustomerID: *cust, BeforeID: *before, Limit: *limit})
	if err != nil {
		return err
	}
	return printListing(a, *asJSON, list, listing[*entitlements.Entitlement]{
		empty:  "no entitlements match: open one with `issuer entitlement create`",
		header: "ID\tCUSTOMER\tTEMPLATE\tKIND\tSTATE\tENDS",
		row: func(e *entitlements.Entitlement) string {
			return fmt.Sprintf("%s\t%s\t%s@%d\t%s\t%s\t%s", e.ID, e.CustomerID, e.TemplateName, e.TemplateVersion, e.Kind, e.State, e.EndsAt.Format("2006-01-02"))
		},
		json: entJSON, full: len(list) == *limit,
		more: func(e *entitlements.Entitlement) string { return "--before " + e.ID },
	})
}

func entShow(ctx context.Context, a *app, args []string) error {
	fs := a.flags("entitlement show", "entitlement show --id ent_…", "Shows one entitlement as JSON.")
	id := fs.String("id", "", "entitlement ID (required)")
	fs.Bool("json", true, "print JSON (always)")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	e, err := svc.GetEntitlement(ctx, *id)
	if err != nil {
		return err
	}
	return a.printJSON(entJSON(e))
}
