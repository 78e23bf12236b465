package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/staffapi"
	"github.com/metrum/licensing/verify"
)

const licenseHelp = `Usage: issuer license <command> [flags]

  issue        sign and store the license of an approved entitlement (or all of them)
  list         list licenses, newest first; --expiring-within for what ends soon
  show         a license's metadata and safe summary
  download     the exact stored file, the safe summary, or the operator checklist
  renew        open a renewal (one license, or every one expiring soon)
  replace      open a replacement: corrected data, new instance scope, new key, lost file
  top-up       open a credit-pack top-up
  revoke       revoke a license (final; asks for confirmation)
  suspend      suspend a license (lifted by reinstate)
  reinstate    lift a suspension
  restore-previous   after a refund or dispute of a successor, make the license it
               replaced active again
  rotate-lease-token   give a lease-required license a new lease token

Renewals, replacements and top-ups are entitlements: approve them, then issue.
`

func cmdLicense(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "license", args, map[string]cmdFunc{
		"issue": licIssue, "list": licList, "download": licDownload, "show": licShow,
		"renew": licRenew, "replace": licReplace, "top-up": licTopUp,
		"revoke": licRevoke, "suspend": licSuspend, "reinstate": licReinstate, "rotate-lease-token": licRotateToken,
		"restore-previous": licRestorePrevious,
	}, licenseHelp)
}

func licJSON(l *entitlements.License) map[string]any {
	st := l.StateAt(time.Now())
	m := map[string]any{"id": l.ID, "entitlement_id": l.EntitlementID, "customer_id": l.CustomerID,
		"customer_name": l.CustomerName, "product": l.Product, "sku": l.SKU, "template_version": l.TemplateVersion,
		"key_id": l.KeyID, "issued_at": verify.FormatTime(l.IssuedAt), "not_before": verify.FormatTime(l.NotBefore),
		"expires_at": verify.FormatTime(l.ExpiresAt), "status": l.Status, "status_reason": l.StatusReason,
		"status_effective_at": nil, "supersedes": l.Supersedes, "superseded_by": l.SupersededBy,
		"state": st.Phase, "state_label": st.Label(), "serving": st.Serving, "blocked_with": l.BlockedWith,
		"features": l.Terms.Features, "limits": l.Terms.Limits, "lease_ttl_seconds": l.Terms.LeaseTTLSeconds,
		"file_sha256": fmt.Sprintf("%x", l.FileSHA256)}
	if !l.StatusEffectiveAt.IsZero() {
		m["status_effective_at"] = verify.FormatTime(l.StatusEffectiveAt)
	}
	return m
}

func licIssue(ctx context.Context, a *app, args []string) error {
	fs := a.flags("license issue", "license issue (--entitlement ent_… [--out FILE] | --all-approved) [--as STAFF] [--json]",
		`Signs the license of an approved entitlement with the product's active license key
and stores the row, the exact file and an audit event in one transaction. With --out,
also writes the file. --all-approved issues every approved entitlement, with progress
on stderr. A lease-required license's lease token is printed once: give it to the
customer now, it is not stored in clear and can't be shown again (only rotated).`)
	id := fs.String("entitlement", "", "approved entitlement ID")
	all := fs.Bool("all-approved", false, "issue every approved entitlement")
	out := fs.String("out", "", "also write the license file here")
	as, asJSON := actorFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if (*id == "") == !*all {
		fmt.Fprintln(a.stderr, "give --entitlement or --all-approved")
		return errUsage
	}
	if *all && *out != "" {
		fmt.Fprintln(a.stderr, "--out writes one file: use it with --entitlement, then `license download` per license")
		return errUsage
	}
	svc, err := a.api(*as)
	if err != nil {
		return err
	}
	if *all {
		return issueAll(ctx, a, svc, *asJSON)
	}
	ids := []string{*id}
	var results []map[string]any
	failed := 0
	for i, eid := range ids {
		l, token, err := svc.IssueWithToken(ctx, eid)
		if err != nil {
			if len(ids) == 1 && !*all {
				return err
			}
			failed++
			fmt.Fprintf(a.stderr, "[%d/%d] %s: %s\n", i+1, len(ids), eid, describe(err))
			results = append(results, map[string]any{"entitlement_id": eid, "error": describe(err)})
			continue
		}
		if *all {
			fmt.Fprintf(a.stderr, "[%d/%d] %s → %s\n", i+1, len(ids), eid, l.ID)
		}
		if *out != "" {
			if err := a.writeOut(*out, l.File); err != nil {
				return err
			}
		}
		m := licJSON(l)
		if token != "" {
			m["lease_token"] = token
		}
		results = append(results, m)
		if !*asJSON {
			fmt.Fprintf(a.stdout, "issued %s (%s for %s, expires %s, key %s)\n", l.ID, l.SKU, l.CustomerID, verify.FormatTime(l.ExpiresAt), l.KeyID)
			if token != "" {
				fmt.Fprintf(a.stdout, "lease token (shown once; the router sends it as a Bearer token): %s\n", token)
			}
			if *out != "" {
				fmt.Fprintf(a.stdout, "wrote %s\n", *out)
			}
		}
	}
	if *asJSON {
		if !*all {
			return a.printJSON(results[0])
		}
		if results == nil {
			results = []map[string]any{}
		}
		if err := a.printJSON(results); err != nil {
			return err
		}
	} else if *all && len(ids) == 0 {
		fmt.Fprintln(a.stdout, "no approved entitlements to issue")
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d entitlements could not be issued", failed, len(ids))
	}
	return nil
}

// writeOut writes b to path atomically, or to the command's stdout for "-".
func (a *app) writeOut(path string, b []byte) error {
	if path == "-" {
		_, err := a.stdout.Write(b)
		return err
	}
	return verify.WriteFileAtomic(path, b, 0o644)
}

func licList(ctx context.Context, a *app, args []string) error {
	fs := a.flags("license list", "license list [--customer cus_…] [--product P] [--status STATUS] [--expiring-within DURATION] [--after CURSOR] [--limit N] [--json]",
		`Lists licenses, newest first, a page at a time: the last line names the cursor of
the next page. --expiring-within (e.g. 720h) lists active licenses that end within that
time, soonest first.`)
	cust := fs.String("customer", "", "only this customer's")
	product := fs.String("product", "", "only this product's")
	status := fs.String("status", "", "active, revoked, suspended or superseded")
	expiring := fs.Duration("expiring-within", 0, "active licenses ending within this duration")
	after := fs.String("after", "", "page cursor from the previous page")
	limit := fs.Int("limit", 50, "how many (at most 500)")
	asJSON := fs.Bool("json", false, "print JSON")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	f := entitlements.LicenseFilter{CustomerID: *cust, Product: *product, Status: *status, Limit: *limit}
	if *expiring > 0 {
		f.ExpiringBefore = time.Now().Add(*expiring)
	}
	if *after != "" {
		ts, id, ok := strings.Cut(*after, "~")
		t, err := time.Parse(time.RFC3339Nano, ts)
		if !ok || err != nil {
			fmt.Fprintln(a.stderr, "--after: not a cursor printed by a previous page")
			return errUsage
		}
		f.AfterIssuedAt, f.AfterID = t, id
	}
	list, err := svc.ListLicenses(ctx, f)
	if err != nil {
		return err
	}
	empty := "no licenses match: issue one with `issuer license issue --entitlement ent_…`"
	if *expiring > 0 {
		empty = fmt.Sprintf("no active license expires within %s", *expiring)
	}
	return printListing(a, *asJSON, list, listing[*entitlements.License]{
		empty:  empty,
		header: "ID\tCUSTOMER\tSKU\tSTATUS\tEXPIRES",
		row: func(l *entitlements.License) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", l.ID, l.CustomerName, l.SKU, l.Status, l.ExpiresAt.Format("2006-01-02"))
		},
		json: licJSON, full: len(list) == *limit && *expiring == 0,
		more: func(l *entitlements.License) string {
			return "--after " + l.IssuedAt.UTC().Format(time.RFC3339Nano) + "~" + l.ID
		},
	})
}

func licDownload(ctx context.Context, a *app, args []string) error {
	fs := a.flags("license download", "license download --id lic_… --out FILE|- [--what file|summary|checklist] [--json]",
		`Writes the exact stored license bytes (default), the safe summary
(license-summary.json: scalar metadata only) or the operator checklist (Markdown).`)
	id := fs.String("id", "", "license ID (required)")
	out := fs.String("out", "", "file to write, or - (required)")
	what := fs.String("what", "file", "file, summary or checklist")
	asJSON := fs.Bool("json", false, "print a JSON receipt instead of text")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		fs.Usage()
		return errUsage
	}
	svc, err := a.api("")
	if err != nil {
		return err
	}
	l, err := svc.GetLicense(ctx, *id)
	if err != nil {
		return err
	}
	var b []byte
	switch *what {
	case "file":
		b = l.File
	case "summary":
		b = issuance.SummaryFile(l)
	case "checklist":
		b = []byte(issuance.Checklist(l))
	default:
		fmt.Fprintf(a.stderr, "--what %q: file, summary or checklist\n", *what)
		return errUsage
	}
	if err := a.writeOut(*out, b); err != nil {
		return err
	}
	if *out == "-" {
		return nil
	}
	if *asJSON {
		return a.printJSON(map[string]any{"id": l.ID, "what": *what, "path": *out, "bytes": len(b), "file_sha256": fmt.Sprintf("%x", l.FileSHA256)})
	}
	fmt.Fprintf(a.stdout, "wrote %s (%s, %d bytes)\n", *out, *what, len(b))
	return nil
}

func licShow(ctx context.Context, a *app, args []string) error {
	fs := a.flags("license show", "license show --id lic_…", "Prints a license's metadata and safe summary as JSON.")
	id := fs.String("id", "", "license ID (required)")
	fs.Bool("json", true, "print JSON (always)")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	l, err := svc.GetLicense(ctx, *id)
	if err != nil {
		return err
	}
	m := licJSON(l)
	m["summary"] = l.Summary
	return a.printJSON(m)
}

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

func licRotateToken(ctx context.Context, a *app, args []string) error {
	fs := a.flags("license rotate-lease-token", "license rotate-lease-token --id lic_… [--as STAFF] [--json]",
		`Gives a lease-required license a new lease token and prints it once. The old token
stops working at once: every router host of the license needs the new one.`)
	id := fs.String("id", "", "license ID (required)")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	tok, err := svc.RotateLeaseToken(ctx, *id)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(map[string]any{"license_id": *id, "lease_token": tok})
	}
	fmt.Fprintf(a.stdout, "new lease token for %s (shown once): %s\n", *id, tok)
	return nil
}

// issueAll runs `license issue --all-approved` on the server, which issues in parallel
// batches and streams a line per license; progress goes to stderr as it arrives.
func issueAll(ctx context.Context, a *app, svc remote, asJSON bool) error {
	results := []map[string]any{}
	failed := 0
	last, err := svc.IssueAll(ctx, func(p staffapi.Progress) {
		if p.Error != "" {
			failed++
			fmt.Fprintf(a.stderr, "[%d/%d] %s: %s\n", p.N, p.Of, p.ID, p.Error)
			results = append(results, map[string]any{"entitlement_id": p.ID, "error": p.Error})
			return
		}
		fmt.Fprintf(a.stderr, "[%d/%d] %s → %s\n", p.N, p.Of, p.ID, p.License.ID)
		m := licJSON(p.License)
		if p.LeaseToken != "" {
			m["lease_token"] = p.LeaseToken
		}
		results = append(results, m)
		if !asJSON {
			fmt.Fprintf(a.stdout, "issued %s (%s for %s, expires %s, key %s)\n", p.License.ID, p.License.SKU, p.License.CustomerID, verify.FormatTime(p.License.ExpiresAt), p.License.KeyID)
			if p.LeaseToken != "" {
				fmt.Fprintf(a.stdout, "lease token of %s (shown once; the router sends it as a Bearer token): %s\n", p.License.ID, p.LeaseToken)
			}
		}
	})
	if err != nil {
		return err
	}
	if asJSON {
		if err := a.printJSON(results); err != nil {
			return err
		}
	} else if last.Of == 0 {
		fmt.Fprintln(a.stdout, "no approved entitlements to issue")
	} else {
		fmt.Fprintf(a.stdout, "issued %d of %d\n", last.Count, last.Of)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d entitlements could not be issued", failed, last.Of)
	}
	return nil
}
