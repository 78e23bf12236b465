package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/metrum/licensing/verify"
)

const keysHelp = `Usage: issuer keys <generate|list|export-keyset> [flags]

  generate        make a new signing key and make it active for its product and purposes
  list            list keys: kid, alg, purposes, status, active slots
  export-keyset   write the public JWK Set a verifier release embeds

Rotation is described step by step in keys/README.md.
`

func cmdKeys(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "keys", args, map[string]cmdFunc{
		"generate": keysGenerate, "list": keysList, "export-keyset": keysExport,
	}, keysHelp)
}

func keysGenerate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("keys generate", "keys generate --product P --alg ALG --purpose PURPOSE[,…] [--as ADMIN] [--json]",
		`Generates a key in the file backend (sealed under the KEK, 0600) and makes it the
active signer for the product and each purpose. The previous key of a slot stays in
the key set and keeps verifying what it signed. Export the key set and release a
verifier that embeds it BEFORE issuing with a new key (keys/README.md).`)
	product := fs.String("product", "", "genai-smart-router or coresdk (required)")
	alg := fs.String("alg", verify.AlgEdDSA, "EdDSA, ES256 or RS256")
	purposes := fs.String("purpose", "license", "comma-separated: license, revocation, lease")
	as := fs.String("as", "", "admin email to act as (default $ISSUER_AS)")
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
	var ps []verify.Purpose
	for _, p := range strings.Split(*purposes, ",") {
		ps = append(ps, verify.Purpose(strings.TrimSpace(p)))
	}
	rec, err := svc.GenerateKey(ctx, *product, *alg, ps, true, by)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(map[string]any{"kid": rec.KID, "alg": rec.Alg, "purposes": rec.Purposes, "product": *product})
	}
	fmt.Fprintf(a.stdout, "generated %s key %s for %s (%s)\n", rec.Alg, rec.KID, *product, strings.Join(rec.Purposes, ", "))
	return nil
}

func keysList(ctx context.Context, a *app, args []string) error {
	fs := a.flags("keys list", "keys list [--json]", "Lists signing keys (public metadata only).")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, err := a.open(ctx); err != nil {
		return err
	}
	keys, err := a.store.ListKeys(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := []map[string]any{}
		for _, k := range keys {
			out = append(out, map[string]any{"kid": k.KID, "alg": k.Alg, "purposes": k.Purposes, "status": k.Status,
				"created_at": k.CreatedAt, "not_after": k.NotAfter, "active_for": k.Active, "backend": k.Backend})
		}
		return a.printJSON(out)
	}
	if len(keys) == 0 {
		fmt.Fprintln(a.stdout, "no keys: make one with `issuer keys generate`")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tPURPOSES\tSTATUS\tCREATED\tACTIVE FOR")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, strings.Join(k.Purposes, ","), k.Status,
			k.CreatedAt.Format("2006-01-02"), strings.Join(k.Active, " "))
	}
	return tw.Flush()
}

func keysExport(ctx context.Context, a *app, args []string) error {
	fs := a.flags("keys export-keyset", "keys export-keyset [--out FILE]",
		"Writes the public JWK Set (every key not retired) for the verifier to embed:\nkeys/public/keyset.json in a release build. Default: stdout.")
	out := fs.String("out", "-", "file to write, or - for stdout")
	fs.Bool("json", true, "the output is JSON (always)")
	if err := parse(fs, args); err != nil {
		return err
	}
	svc, err := a.open(ctx)
	if err != nil {
		return err
	}
	b, err := svc.PublicKeySet(ctx)
	if err != nil {
		return err
	}
	if *out == "-" {
		_, err = a.stdout.Write(b)
		return err
	}
	if err := verify.WriteFileAtomic(*out, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "wrote %s\n", *out)
	return nil
}
