package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
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
	fs := a.flags("license issue", "license issue (--entitlement ent_… [--out FILE] | --all-approved | --job job_…) [--as STAFF] [--json]",
		`Signs the license of an approved entitlement with the product's active license key
and stores the row, the exact file and an audit event in one transaction. With --out,
also writes the file. --all-approved issues every approved entitlement as a bulk job
on the server: each result is printed as it arrives (--json: one JSON object per
line, the first naming the job), progress on stderr. --job prints a bulk job's
results again, and which licenses need a new lease token. A lease-required license's
lease token is printed once: give it to the customer now, it is not stored in clear
and can't be shown again (only rotated).`)
	id := fs.String("entitlement", "", "approved entitlement ID")
	all := fs.Bool("all-approved", false, "issue every approved entitlement")
	job := fs.String("job", "", "print the results of this bulk job again")
	out := fs.String("out", "", "also write the license file here")
	as, asJSON := actorFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if n := btoi(*id != "") + btoi(*all) + btoi(*job != ""); n != 1 {
		fmt.Fprintln(a.stderr, "give one of --entitlement, --all-approved or --job")
		return errUsage
	}
	if *job != "" {
		svc, err := a.api(*as)
		if err != nil {
			return err
		}
		return showJob(ctx, a, svc, *job, *asJSON)
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
	fs := a.flags("license list", "license list [--customer cus_…] [--product P] [--status STATUS] [--expiring-within DURATION] [--issued-since TIME] [--after CURSOR] [--limit N] [--json]",
		`Lists licenses, newest first, a page at a time: the last line names the cursor of
the next page. --expiring-within (e.g. 720h) lists active licenses that end within that
time, soonest first. --issued-since (RFC 3339, e.g. 2026-12-01T14:03:00Z) lists those
issued at or after it: what a bulk job that started then may have issued.`)
	cust := fs.String("customer", "", "only this customer's")
	product := fs.String("product", "", "only this product's")
	status := fs.String("status", "", "active, revoked, suspended or superseded")
	expiring := fs.Duration("expiring-within", 0, "active licenses ending within this duration")
	since := fs.String("issued-since", "", "only licenses issued at or after this time (RFC 3339)")
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
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil {
			fmt.Fprintln(a.stderr, "--issued-since: want an RFC 3339 time such as 2026-12-01T14:03:00Z")
			return errUsage
		}
		f.IssuedSince = t
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
	switch *what {
	case entitlements.WhatFile, entitlements.WhatSummary, entitlements.WhatChecklist:
	default:
		fmt.Fprintf(a.stderr, "--what %q: file, summary or checklist\n", *what)
		return errUsage
	}
	l, err := svc.GetLicense(ctx, *id)
	if err != nil {
		return err
	}
	// Through the staff API's download, so the delivery is recorded as it is from the
	// console.
	f, err := svc.Download(ctx, l.ID, *what)
	if err != nil {
		return err
	}
	b := f.Bytes
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
