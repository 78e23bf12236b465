package main

import (
	"context"
	"fmt"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

const bundleHelp = `Usage: issuer bundle <publish|list|download> [flags]

  publish    sign and publish a revocation bundle for a product now
  list       published bundles, newest first
  download   the exact bytes of a published bundle (default: the product's latest)

The running issuer (serve, dev) re-publishes every product's bundle by itself when a
license's status changes and before the current one reaches half its lifetime, so a
customer who requires a current bundle always finds one.
`

func cmdBundle(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "bundle", args, map[string]cmdFunc{
		"publish": bundlePublish, "list": bundleList, "download": bundleDownload,
	}, bundleHelp)
}

func bundleJSON(b *entitlements.Bundle) map[string]any {
	return map[string]any{"sequence": b.Sequence, "product": b.Product, "issued_at": verify.FormatTime(b.IssuedAt),
		"expires_at": verify.FormatTime(b.ExpiresAt), "key_id": b.KeyID, "entries": b.Entries, "reason": b.Reason,
		"file_sha256": fmt.Sprintf("%x", b.FileSHA256), "created_by": b.CreatedBy}
}

func bundlePublish(ctx context.Context, a *app, args []string) error {
	fs := a.flags("bundle publish", "bundle publish --product P [--out FILE] [--as STAFF] [--json]",
		`Signs the product's current revocation list (revoked, suspended and superseded
licenses, minus long-expired ones) with its revocation key, under the next sequence
number, and stores it. Needs the approver role.`)
	product := fs.String("product", "", "genai-smart-router or coresdk (required)")
	out := fs.String("out", "", "also write the bundle here")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	b, err := svc.PublishBundle(ctx, *product)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := a.writeOut(*out, b.File); err != nil {
			return err
		}
	}
	if *asJSON {
		return a.printJSON(bundleJSON(b))
	}
	fmt.Fprintf(a.stdout, "published %s bundle #%d (%d entries, expires %s)\n", b.Product, b.Sequence, b.Entries, verify.FormatTime(b.ExpiresAt))
	return nil
}

func bundleList(ctx context.Context, a *app, args []string) error {
	fs := a.flags("bundle list", "bundle list [--product P] [--before SEQ] [--limit N] [--json]", "Lists published bundles, newest first.")
	product := fs.String("product", "", "only this product's")
	before := fs.Int64("before", 0, "page: bundles before this sequence")
	limit := fs.Int("limit", 50, "how many (at most 500)")
	asJSON := fs.Bool("json", false, "print JSON")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	list, err := svc.ListBundles(ctx, *product, *before, *limit)
	if err != nil {
		return err
	}
	return printListing(a, *asJSON, list, listing[*entitlements.Bundle]{
		empty:  "no bundles yet: the running issuer publishes one per product with a revocation key, or run `issuer bundle publish`",
		header: "SEQ\tPRODUCT\tENTRIES\tISSUED\tEXPIRES\tREASON",
		row: func(b *entitlements.Bundle) string {
			return fmt.Sprintf("%d\t%s\t%d\t%s\t%s\t%s", b.Sequence, b.Product, b.Entries, verify.FormatTime(b.IssuedAt), verify.FormatTime(b.ExpiresAt), b.Reason)
		},
		json: bundleJSON, full: len(list) == *limit,
		more: func(b *entitlements.Bundle) string { return fmt.Sprintf("--before %d", b.Sequence) },
	})
}

func bundleDownload(ctx context.Context, a *app, args []string) error {
	fs := a.flags("bundle download", "bundle download --product P [--sequence N] --out FILE|- [--json]",
		"Writes the exact bytes of a published bundle: the latest, or the given sequence.")
	product := fs.String("product", "", "product (required)")
	seq := fs.Int64("sequence", 0, "sequence (default: the latest)")
	out := fs.String("out", "", "file to write, or - (required)")
	asJSON := fs.Bool("json", false, "print a JSON receipt")
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
	b, err := svc.GetBundle(ctx, *product, *seq)
	if err != nil {
		return err
	}
	if err := a.writeOut(*out, b.File); err != nil {
		return err
	}
	if *out == "-" {
		return nil
	}
	if *asJSON {
		m := bundleJSON(b)
		m["path"] = *out
		return a.printJSON(m)
	}
	fmt.Fprintf(a.stdout, "wrote %s (bundle #%d, %d entries)\n", *out, b.Sequence, b.Entries)
	return nil
}
