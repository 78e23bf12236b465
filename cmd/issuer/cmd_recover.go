package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/verify"
)

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func cmdRecover(ctx context.Context, a *app, args []string) error {
	fs := a.flags("recover", "recover --from-bundle FILE [--from-bundle FILE]... [--keyset FILE] [--dry-run] [--json]",
		`After the database was restored from a backup, re-applies what the newest published
revocation bundle of each product shows and the database lacks (docs/operations.md,
"Restore"). Run it before any replica serves from the restored database.

For each bundle (at most one per product; fetch each product's newest from
/v1/bundles/{product}/latest or your CDN), after checking it is an authentic bundle of
this issuer:
  - every revocation and suspension the database lacks is applied (audited as
    license.recover); a revocation is final, a suspension never overrides one;
  - entries of licenses the database never had (issued after the backup) are kept, and
    every later bundle lists them;
  - the product's bundle sequence rises above the bundle's (sequences are never
    reused);
  - a lease quarantine starts: until each license's lease TTL has passed, no host takes
    a new lease slot (hosts the database forgot still hold leases).
It also lists suspensions the database holds that the bundle no longer shows (probably
lifted after the backup: reinstate them in the console). --dry-run reports without
writing.

An operator command: it opens the database itself (DATABASE_URL), like migrate, and no
signing key. Bundles are checked against --keyset (the released key set) or, without
it, every key the database has recorded.`)
	var files multiFlag
	fs.Var(&files, "from-bundle", "a published revocation bundle (repeat: one per product)")
	keyset := fs.String("keyset", "", "public key set to check the bundles with (default: the keys the database knows)")
	dry := fs.Bool("dry-run", false, "say what would change, change nothing")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(files) == 0 {
		fmt.Fprintln(a.stderr, "recover: --from-bundle is required (the newest published bundle of each product)")
		return errUsage
	}
	var data [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
		data = append(data, b)
	}
	if err := a.openStore(ctx); err != nil {
		return err
	}
	// No key backend: recovery signs nothing, and needs no KEK.
	svc := issuance.New(a.store, issuance.Config{Issuer: a.cfg.Issuer.Name, Log: a.logger()})
	var ks *verify.KeySet
	var err error
	if *keyset != "" {
		b, err := os.ReadFile(*keyset)
		if err != nil {
			return fmt.Errorf("read %s: %w", *keyset, err)
		}
		if ks, err = verify.ParseKeySet(b); err != nil {
			return err
		}
	} else if ks, err = svc.KnownKeySet(ctx); err != nil {
		return err
	}
	reps, err := svc.Recover(ctx, data, ks, *dry)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]map[string]any, 0, len(reps))
		for _, r := range reps {
			entries := make([]map[string]string, 0, len(r.Entries))
			for _, e := range r.Entries {
				entries = append(entries, map[string]string{"license_id": e.LicenseID, "status": e.Status, "was": e.Was, "outcome": e.Outcome})
			}
			m := map[string]any{"product": r.Product, "bundle_sequence": r.Sequence, "sequence_before": r.SequenceBefore,
				"sequence_after": r.SequenceAfter, "entries": entries, "dry_run": *dry, "lease_quarantine_from": nil}
			if !r.LeaseQuarantineFrom.IsZero() {
				m["lease_quarantine_from"] = verify.FormatTime(r.LeaseQuarantineFrom)
			}
			out = append(out, m)
		}
		return a.printJSON(map[string]any{"recovered": out})
	}
	for _, r := range reps {
		printRecoverReport(a, r, *dry)
	}
	return nil
}

var recoverWords = map[string]string{
	entitlements.RecoveredApplied:   "applied (the database lacked it)",
	entitlements.RecoveredUnknown:   "kept: this database has no such license (issued after the backup?)",
	entitlements.RecoveredAlready:   "already so",
	entitlements.RecoveredForeign:   "ignored: the license is of another product",
	entitlements.RecoveredLiftedMay: "suspended here but not in the bundle: lifted after the backup? reinstate it if so",
}

func printRecoverReport(a *app, r *entitlements.RecoverReport, dry bool) {
	verb := "recovered"
	if dry {
		verb = "would recover"
	}
	fmt.Fprintf(a.stdout, "%s %s from bundle #%d: sequence %d → %d\n", verb, r.Product, r.Sequence, r.SequenceBefore, r.SequenceAfter)
	counts := map[string]int{}
	for _, e := range r.Entries {
		counts[e.Outcome]++
		if e.Outcome == entitlements.RecoveredAlready {
			continue
		}
		was := e.Was
		if was == "" {
			was = "unknown"
		}
		fmt.Fprintf(a.stdout, "  %s %s (was %s): %s\n", e.LicenseID, e.Status, was, recoverWords[e.Outcome])
	}
	fmt.Fprintf(a.stdout, "  %d applied, %d kept for unknown licenses, %d already so, %d suspensions to review\n",
		counts[entitlements.RecoveredApplied], counts[entitlements.RecoveredUnknown], counts[entitlements.RecoveredAlready], counts[entitlements.RecoveredLiftedMay])
	if !r.LeaseQuarantineFrom.IsZero() {
		fmt.Fprintf(a.stdout, "  lease quarantine from %s: no new lease slots until each license's lease TTL has passed\n",
			r.LeaseQuarantineFrom.UTC().Format(time.RFC3339))
	}
}
