package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
)

const entitlementHelp = `Usage: issuer entitlement <create|approve|reject|list|show> [flags]

  create    open a draft entitlement from a template
  approve   approve a draft (maker-checker: not by its creator)
  reject    reject a draft, with a reason
  list      list entitlements, newest first
  show      show one entitlement
`

func cmdEntitlement(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "entitlement", args, map[string]cmdFunc{
		"create": entCreate, "approve": entApprove, "reject": entReject, "list": entList, "show": entShow,
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
	as := fs.String("as", "", "staff email to act as (default $ISSUER_AS)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	in := issuance.EntitlementInput{CustomerID: *cust, Template: *tmpl, InstanceFingerprint: *fp, ContractRef: *contract,
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
	svc, err := a.open(ctx)
	if err != nil {
		return err
	}
	by, err := a.actor(ctx, *as)
	if err != nil {
		return err
	}
	e, err := svc.CreateEntitlement(ctx, in, by)
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
		"template_version": e.TemplateVersion, "state": e.State, "kind": e.Kind, "starts_at": e.StartsAt, "ends_at": e.EndsAt,
		"instance_fingerprint": e.InstanceFingerprint, "contract_ref": e.ContractRef, "source": e.Source,
		"supersedes": e.Supersedes, "created_by": e.CreatedBy, "decided_by": e.DecidedBy, "overrides": e.Overrides}
}

func entDecide(ctx context.Context, a *app, args []string, approve bool) error {
	verb := map[bool]string{true: "approve", false: "reject"}[approve]
	fs := a.flags("entitlement "+verb, "entitlement "+verb+" --id ent_… [--reason TEXT] [--as STAFF] [--json]",
		"Decides a draft entitlement. Needs the approver role; with maker-checker on, the\ncreator of the entitlement can't decide it.")
	id := fs.String("id", "", "entitlement ID (required)")
	reason := fs.String("reason", "", "why (required to reject)")
	as := fs.String("as", "", "staff email to act as (default $ISSUER_AS)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	svc, err := a.open(ctx)
	if err != nil {
		return err
	}
	by, err := a.actor(ctx, *as)
	if err != nil {
		return err
	}
	var e *entitlements.Entitlement
	if approve {
		e, err = svc.Approve(ctx, *id, by)
	} else {
		e, err = svc.Reject(ctx, *id, *reason, by)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(entJSON(e))
	}
	fmt.Fprintf(a.stdout, "entitlement %s is %s\n", e.ID, e.State)
	if approve {
		fmt.Fprintf(a.stdout, "next: `issuer license issue --entitlement %s`\n", e.ID)
	}
	return nil
}

func entApprove(ctx context.Context, a *app, args []string) error {
	return entDecide(ctx, a, args, true)
}
func entReject(ctx context.Context, a *app, args []string) error {
	return entDecide(ctx, a, args, false)
}

func entList(ctx context.Context, a *app, args []string) error {
	fs := a.flags("entitlement list", "entitlement list [--state STATE] [--limit N] [--json]", "Lists entitlements, newest first.")
	state := fs.String("state", "", "draft, approved, rejected, cancelled or issued")
	limit := fs.Int("limit", 50, "how many (at most 500)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, err := a.open(ctx); err != nil {
		return err
	}
	list, err := a.store.ListEntitlements(ctx, *state, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		out := []map[string]any{}
		for _, e := range list {
			out = append(out, entJSON(e))
		}
		return a.printJSON(out)
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "no entitlements: open one with `issuer entitlement create`")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCUSTOMER\tTEMPLATE\tSTATE\tENDS")
	for _, e := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s@%d\t%s\t%s\n", e.ID, e.CustomerID, e.TemplateName, e.TemplateVersion, e.State, e.EndsAt.Format("2006-01-02"))
	}
	return tw.Flush()
}

func entShow(ctx context.Context, a *app, args []string) error {
	fs := a.flags("entitlement show", "entitlement show --id ent_…", "Shows one entitlement as JSON.")
	id := fs.String("id", "", "entitlement ID (required)")
	fs.Bool("json", true, "print JSON (always)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, err := a.open(ctx); err != nil {
		return err
	}
	e, err := a.store.GetEntitlement(ctx, *id)
	if err != nil {
		return err
	}
	return a.printJSON(entJSON(e))
}
