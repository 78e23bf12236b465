package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

const licenseHelp = `Usage: issuer license <issue|list|download|show> [flags]

  issue      sign and store the license of an approved entitlement
  list       list licenses, newest first
  download   write the exact stored license file
  show       the safe summary of a license
`

func cmdLicense(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "license", args, map[string]cmdFunc{
		"issue": licIssue, "list": licList, "download": licDownload, "show": licShow,
	}, licenseHelp)
}

func licJSON(l *entitlements.License) map[string]any {
	return map[string]any{"id": l.ID, "entitlement_id": l.EntitlementID, "customer_id": l.CustomerID,
		"customer_name": l.CustomerName, "product": l.Product, "sku": l.SKU, "template_version": l.TemplateVersion,
		"key_id": l.KeyID, "issued_at": verify.FormatTime(l.IssuedAt), "not_before": verify.FormatTime(l.NotBefore),
		"expires_at": verify.FormatTime(l.ExpiresAt), "status": l.Status, "supersedes": l.Supersedes,
		"superseded_by": l.SupersededBy, "file_sha256": fmt.Sprintf("%x", l.FileSHA256)}
}

func licIssue(ctx context.Context, a *app, args []string) error {
	fs := a.flags("license issue", "license issue --entitlement ent_… [--out FILE] [--as STAFF] [--json]",
		`Signs the license of an approved entitlement with the product's active license key
and stores the row, the exact file and an audit event in one transaction. With --out,
also writes the file.`)
	id := fs.String("entitlement", "", "approved entitlement ID (required)")
	out := fs.String("out", "", "also write the license file here")
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
	l, err := svc.Issue(ctx, *id, by)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := writeOut(*out, l.File); err != nil {
			return err
		}
	}
	if *asJSON {
		return a.printJSON(licJSON(l))
	}
	fmt.Fprintf(a.stdout, "issued %s (%s for %s, expires %s, key %s)\n", l.ID, l.SKU, l.CustomerID, verify.FormatTime(l.ExpiresAt), l.KeyID)
	if *out != "" {
		fmt.Fprintf(a.stdout, "wrote %s\n", *out)
	}
	return nil
}

func writeOut(path string, b []byte) error {
	if path == "-" {
		_, err := os.Stdout.Write(b)
		return err
	}
	return verify.WriteFileAtomic(path, b, 0o644)
}

func licList(ctx context.Context, a *app, args []string) error {
	fs := a.flags("license list", "license list [--customer cus_…] [--status STATUS] [--limit N] [--json]", "Lists licenses, newest first.")
	cust := fs.String("customer", "", "only this customer's")
	status := fs.String("status", "", "active, revoked, suspended or superseded")
	limit := fs.Int("limit", 50, "how many (at most 500)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, err := a.open(ctx); err != nil {
		return err
	}
	list, err := a.store.ListLicenses(ctx, entitlements.LicenseFilter{CustomerID: *cust, Status: *status, Limit: *limit})
	if err != nil {
		return err
	}
	if *asJSON {
		out := []map[string]any{}
		for _, l := range list {
			out = append(out, licJSON(l))
		}
		return a.printJSON(out)
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "no licenses: issue one with `issuer license issue --entitlement ent_…`")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCUSTOMER\tSKU\tSTATUS\tEXPIRES")
	for _, l := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.ID, l.CustomerName, l.SKU, l.Status, l.ExpiresAt.Format("2006-01-02"))
	}
	return tw.Flush()
}

func licDownload(ctx context.Context, a *app, args []string) error {
	fs := a.flags("license download", "license download --id lic_… --out FILE|-", "Writes the exact stored license bytes (- for stdout).")
	id := fs.String("id", "", "license ID (required)")
	out := fs.String("out", "", "file to write, or - (required)")
	asJSON := fs.Bool("json", false, "print a JSON receipt instead of text")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		fs.Usage()
		return errUsage
	}
	if _, err := a.open(ctx); err != nil {
		return err
	}
	l, err := a.store.GetLicense(ctx, *id)
	if err != nil {
		return err
	}
	if err := writeOut(*out, l.File); err != nil {
		return err
	}
	if *out == "-" {
		return nil
	}
	if *asJSON {
		return a.printJSON(map[string]any{"id": l.ID, "path": *out, "bytes": len(l.File), "file_sha256": fmt.Sprintf("%x", l.FileSHA256)})
	}
	fmt.Fprintf(a.stdout, "wrote %s (%d bytes, sha256 %x)\n", *out, len(l.File), l.FileSHA256)
	return nil
}

func licShow(ctx context.Context, a *app, args []string) error {
	fs := a.flags("license show", "license show --id lic_…", "Prints the license's safe summary as JSON.")
	id := fs.String("id", "", "license ID (required)")
	fs.Bool("json", true, "print JSON (always)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, err := a.open(ctx); err != nil {
		return err
	}
	l, err := a.store.GetLicense(ctx, *id)
	if err != nil {
		return err
	}
	m := licJSON(l)
	m["summary"] = l.Summary
	return a.printJSON(m)
}
