package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

const keysHelp = `Usage: issuer keys <command> [flags]

  generate        make a new key (a standby in the key set; --activate to sign with it now)
  rotate          make a slot's newest standby key its active signer
  activate        make a given key the active signer of its slots
  retire          take a key out of the exported key set
  not-after       stop a key signing after a time (verifiers still accept older documents)
  list            kid, alg, purposes, backend, status, created, not_after, active slots
  export-keyset   write the public JWK Set a verifier release embeds
  rewrap          re-seal every file key under a new key-encryption key (KEK rotation)

Rotation, step by step, is in keys/README.md: generate, export, release a verifier that
trusts the new key, then rotate.
`

func cmdKeys(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "keys", args, map[string]cmdFunc{
		"generate": keysGenerate, "rotate": keysRotate, "activate": keysActivate, "retire": keysRetire,
		"not-after": keysNotAfter, "list": keysList, "export-keyset": keysExport, "rewrap": keysRewrap,
	}, keysHelp)
}

func keyJSON(k *entitlements.KeyRecord) map[string]any {
	m := map[string]any{"kid": k.KID, "product": k.Product, "alg": k.Alg, "purposes": k.Purposes, "backend": k.Backend,
		"status": k.Status, "created_at": verify.FormatTime(k.CreatedAt), "not_after": optTimeJSON(k.NotAfter), "active_for": k.Active}
	if k.Active == nil {
		m["active_for"] = []string{}
	}
	return m
}

func keysGenerate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("keys generate", "keys generate --product P --purpose PURPOSE[,…] [--alg ALG] [--backend file|pkcs11] [--activate] [--as ADMIN] [--json]",
		`Generates a key in a backend and records its public part. Without --activate the
key is a standby: it joins the exported key set but signs nothing, so a verifier
release can ship it before it is used (then 'issuer keys rotate'). --activate makes it
the active signer at once: for a product's first key, or an emergency.

File keys are sealed under the KEK (AES-256-GCM, 0600). PKCS#11 keys are made on the
token, non-extractable (ES256 only; needs an issuer built with -tags pkcs11).`)
	product := fs.String("product", "", "genai-smart-router or coresdk (required)")
	alg := fs.String("alg", verify.AlgEdDSA, "EdDSA, ES256 or RS256 (RS256: CoreSDK license tokens only)")
	purposes := fs.String("purpose", "", "comma-separated: license, revocation, lease (one per key in production)")
	backend := fs.String("backend", "file", "file or pkcs11")
	activate := fs.Bool("activate", false, "make it the active signer of its slots now")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	var ps []verify.Purpose
	for _, p := range strings.Split(*purposes, ",") {
		if p = strings.TrimSpace(p); p != "" {
			ps = append(ps, verify.Purpose(p))
		}
	}
	rec, err := svc.GenerateKey(ctx, entitlements.KeyInput{Product: *product, Alg: *alg, Purposes: ps, Backend: *backend}, *activate)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(keyJSON(rec))
	}
	fmt.Fprintf(a.stdout, "generated %s key %s for %s (%s), backend %s\n", rec.Alg, rec.KID, rec.Product, strings.Join(rec.Purposes, ", "), rec.Backend)
	if len(rec.Active) > 0 {
		fmt.Fprintf(a.stdout, "active signer of %s\n", strings.Join(rec.Active, ", "))
	} else {
		fmt.Fprintln(a.stdout, "standby: export the key set, release a verifier that trusts it, then `issuer keys rotate`")
	}
	return nil
}

func keysRotate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("keys rotate", "keys rotate --product P --purpose PURPOSE [--as ADMIN] [--json]",
		`Makes the newest standby key of a slot (product and purpose) its active signer. The
previous signer stays in the key set, so everything it signed keeps verifying until
you retire it. Fails when the slot has no standby: generate one first, and release a
verifier that trusts it before rotating.`)
	product := fs.String("product", "", "product (required)")
	purpose := fs.String("purpose", "", "license, revocation or lease (required)")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	next, prev, err := svc.RotateKey(ctx, *product, *purpose)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(map[string]any{"product": *product, "purpose": *purpose, "kid": next, "previous": prev})
	}
	fmt.Fprintf(a.stdout, "%s/%s now signs with %s (previous: %s, still in the key set)\n", *product, *purpose, next, orNone(prev))
	return nil
}

func keysActivate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("keys activate", "keys activate --kid KID [--as ADMIN] [--json]",
		"Makes a key the active signer of its product's slot for each of its purposes.")
	kid := fs.String("kid", "", "key ID (required)")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	if err := svc.ActivateKey(ctx, *kid); err != nil {
		return err
	}
	return a.printKey(ctx, svc, *kid, *asJSON, "activated")
}

func keysRetire(ctx context.Context, a *app, args []string) error {
	fs := a.flags("keys retire", "keys retire --kid KID --reason TEXT [--as ADMIN] [--json]",
		`Takes a key out of the exported key set. Verifiers released after this no longer
trust it, so everything it signed must have been replaced first. The active signer of
a slot can't be retired: rotate first.`)
	kid := fs.String("kid", "", "key ID (required)")
	reason := fs.String("reason", "", "why (required; goes to the audit trail)")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	if err := svc.RetireKey(ctx, *kid, *reason); err != nil {
		return err
	}
	return a.printKey(ctx, svc, *kid, *asJSON, "retired")
}

func keysNotAfter(ctx context.Context, a *app, args []string) error {
	fs := a.flags("keys not-after", "keys not-after --kid KID --at RFC3339 [--as ADMIN] [--json]",
		`Sets the time after which the key may no longer sign (formats.md section 1): the
issuer stops using it then, and verifiers whose key set carries the not_after reject
documents it signed later while accepting older ones. Use the suspected compromise
time after a key leak. It can only move earlier.`)
	kid := fs.String("kid", "", "key ID (required)")
	at := fs.String("at", "", "RFC 3339 time (required)")
	as, asJSON := actorFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339, *at)
	if err != nil {
		fmt.Fprintf(a.stderr, "--at %q: not RFC 3339\n", *at)
		return errUsage
	}
	svc, err := a.api(*as)
	if err != nil {
		return err
	}
	if err := svc.SetKeyNotAfter(ctx, *kid, t); err != nil {
		return err
	}
	return a.printKey(ctx, svc, *kid, *asJSON, "not_after set on")
}

func (a *app) printKey(ctx context.Context, svc remote, kid string, asJSON bool, verb string) error {
	k, err := svc.GetKey(ctx, kid)
	if err != nil {
		return err
	}
	if asJSON {
		return a.printJSON(keyJSON(k))
	}
	fmt.Fprintf(a.stdout, "%s %s (%s, %s; active for: %s)\n", verb, k.KID, k.Status, strings.Join(k.Purposes, ","), orNone(strings.Join(k.Active, " ")))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func keysList(ctx context.Context, a *app, args []string) error {
	fs := a.flags("keys list", "keys list [--json]", "Lists signing keys (public metadata only).")
	asJSON := fs.Bool("json", false, "print JSON")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	keys, err := svc.ListKeys(ctx)
	if err != nil {
		return err
	}
	states := entitlements.KeyStates(keys, time.Now())
	return printListing(a, *asJSON, keys, listing[*entitlements.KeyRecord]{
		empty:  "no keys: make one with `issuer keys generate --activate`",
		header: "KID\tPRODUCT\tALG\tPURPOSES\tBACKEND\tSTATE\tCREATED\tNOT AFTER\tSIGNS FOR",
		row: func(k *entitlements.KeyRecord) string {
			na := "-"
			if k.NotAfter != nil {
				na = verify.FormatTime(*k.NotAfter)
			}
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", k.KID, k.Product, k.Alg, strings.Join(k.Purposes, ","), k.Backend,
				states[k.KID], k.CreatedAt.Format("2006-01-02"), na, orNone(strings.Join(k.Active, " ")))
		},
		json: func(k *entitlements.KeyRecord) map[string]any {
			out := keyJSON(k)
			out["state"] = states[k.KID]
			return out
		},
	})
}

func keysExport(ctx context.Context, a *app, args []string) error {
	fs := a.flags("keys export-keyset", "keys export-keyset [--product P] [--out FILE]",
		`Writes the public JWK Set (every key not retired, each with the products it is
trusted for) for the verifier to embed: keys/public/keyset.json in a release build.
--product exports only that product's keys (a verifier released for one product).
Default: stdout.`)
	out := fs.String("out", "-", "file to write, or - for stdout")
	product := fs.String("product", "", "only this product's keys (default: every product)")
	fs.Bool("json", true, "the output is JSON (always)")
	if err := parse(fs, args); err != nil {
		return err
	}
	svc, err := a.api("")
	if err != nil {
		return err
	}
	b, err := svc.PublicKeySet(ctx, *product)
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

func keysRewrap(ctx context.Context, a *app, args []string) error {
	fs := a.flags("keys rewrap", "keys rewrap --new-kek-file FILE [--json]",
		`Re-seals every file key in signing.key_dir under a new key-encryption key: KEK
rotation, or after the key folder was exposed. The current KEK comes from METRUM_KEK or
signing.kek_file as usual; the new one from FILE (0600, base64 of 32 bytes). Each key
file is replaced atomically; a run that stops midway can be run again. Afterwards,
point METRUM_KEK / signing.kek_file at the new KEK and destroy the old one.

An operator command, run on the issuer's host: it opens the key folder, both KEKs and
the database (for the audit event) itself.`)
	newKEK := fs.String("new-kek-file", "", "file holding the new KEK (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *newKEK == "" {
		fs.Usage()
		return errUsage
	}
	if _, err := a.config(); err != nil {
		return err
	}
	next, err := signing.LoadKEKFile(*newKEK)
	if err != nil {
		return err
	}
	if _, err := a.open(ctx); err != nil { // the audit trail records the rewrap
		return err
	}
	done, err := a.fileKeys.Rewrap(next, func(kid string) {
		if !*asJSON {
			fmt.Fprintf(a.stderr, "re-sealed %s\n", kid)
		}
	})
	details := map[string]string{"rewrapped": strconv.Itoa(len(done)), "key_ids": strings.Join(done, " "), "key_dir": a.cfg.Signing.KeyDir}
	if err != nil {
		details["stopped"] = err.Error()
	}
	if aerr := a.store.Audit(ctx, &entitlements.AuditEvent{Actor: operatorActor(a), Action: "keys.rewrap", Subject: "kek", Details: details}); aerr != nil {
		return errors.Join(err, fmt.Errorf("the rewrap is not in the audit trail: %w", aerr))
	}
	if err != nil {
		return fmt.Errorf("rewrap stopped after %d key(s): %w", len(done), err)
	}
	if *asJSON {
		if done == nil {
			done = []string{}
		}
		return a.printJSON(map[string]any{"rewrapped": done})
	}
	fmt.Fprintf(a.stdout, "re-sealed %d key(s) under the new KEK; switch METRUM_KEK / signing.kek_file to it now\n", len(done))
	return nil
}

// operatorActor names who ran an operator command (which opens the database and keys
// directly, with no staff session): the system user, as the audit trail's actor.
func operatorActor(a *app) string {
	u := a.getenv("USER")
	if u == "" {
		u = "unknown"
	}
	return "operator:" + u
}
