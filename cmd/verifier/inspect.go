package main

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/metrum/licensing/verify"
)

func sortedNames(m map[string]int64) []string { return slices.Sorted(maps.Keys(m)) }

func limitText(m map[string]int64, k, suffix string) string {
	if v, ok := m[k]; ok {
		return fmt.Sprintf("%d%s", v, suffix)
	}
	return "unlimited"
}

// humanValue renders a summary value the way a person reads it: lists joined by
// commas, limits as name=value, booleans as yes/no, an empty list as "none".
func humanValue(v any) string {
	switch x := v.(type) {
	case []string:
		if len(x) == 0 {
			return "none"
		}
		return strings.Join(x, ", ")
	case []verify.Purpose:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = string(p)
		}
		return humanValue(parts)
	case map[string]int64:
		if len(x) == 0 {
			return "none (unlimited)"
		}
		parts := make([]string, 0, len(x))
		for _, k := range sortedNames(x) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, x[k]))
		}
		return strings.Join(parts, ", ")
	case bool:
		if x {
			return "yes"
		}
		return "no"
	default:
		return fmt.Sprint(x)
	}
}

// cmdInspect prints the safe summary of a license, bundle or lease: scalar fields only,
// and only once the signature has verified (unverified content is not shown).
func cmdInspect(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("inspect", stderr)
	keyset := fs.String("keyset", "", "trusted key set (default: the embedded release key set)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(pos) != 1 {
		return fail(stderr, usageError{"inspect takes exactly one FILE"})
	}
	ks, err := loadKeySet(*keyset, true)
	if err != nil {
		return fail(stderr, err)
	}
	data, err := readLimited(pos[0], verify.MaxBundleSize)
	if err != nil {
		return fail(stderr, err)
	}
	out := map[string]any{"file_sha256": fmt.Sprintf("%x", sha256.Sum256(data))}
	var perr error
	switch kind := verify.Sniff(data); kind {
	case "jws", verify.FormatLicense:
		out["type"] = "license"
		var l *verify.License
		if l, perr = verify.ParseLicenseFile(data, ks); perr == nil {
			maps.Copy(out, map[string]any{"form": l.Form, "license_id": l.LicenseID, "customer_id": l.CustomerID,
				"product": l.Product, "sku": l.SKU, "issuer": l.Issuer, "key_id": l.KeyID, "algorithm": l.Algorithm,
				"issued_at": verify.FormatTime(l.IssuedAt), "expires_at": verify.FormatTime(l.ExpiresAt),
				"features": l.Features, "limits": l.Limits, "grace_period_seconds": int64(l.GracePeriod.Seconds())})
			if !l.NotBefore.IsZero() {
				out["not_before"] = verify.FormatTime(l.NotBefore)
			}
			if l.Plan != "" {
				out["plan"] = l.Plan
			}
			if l.InstanceFingerprint != "" {
				out["instance_fingerprint"] = l.InstanceFingerprint
			}
			if l.Supersedes != "" {
				out["supersedes"] = l.Supersedes
			}
			if l.Lease != nil {
				out["lease_required"] = l.Lease.Required
			}
		}
	case verify.FormatRevocation:
		out["type"] = "revocation-bundle"
		var b *verify.Bundle
		if b, perr = verify.ParseBundleFile(data, ks); perr == nil {
			maps.Copy(out, map[string]any{"issuer": b.Issuer, "product": b.Product, "sequence": b.Sequence, "key_id": b.KeyID,
				"issued_at": verify.FormatTime(b.IssuedAt), "expires_at": verify.FormatTime(b.ExpiresAt),
				"entries": b.Len(), "revoked": b.Count(verify.StatusRevoked), "suspended": b.Count(verify.StatusSuspended),
				"superseded": b.Count(verify.StatusSuperseded), "current": time.Now().Before(b.ExpiresAt)})
		}
	case verify.FormatLease:
		out["type"] = "lease"
		var ls *verify.Lease
		if ls, perr = verify.ParseLeaseFile(data, ks); perr == nil {
			maps.Copy(out, map[string]any{"lease_id": ls.LeaseID, "license_id": ls.LicenseID, "key_id": ls.KeyID,
				"instance_fingerprint": ls.InstanceFingerprint, "issued_at": verify.FormatTime(ls.IssuedAt),
				"expires_at": verify.FormatTime(ls.ExpiresAt)})
		}
	default:
		out["type"] = "unknown"
		perr = errors.New("not a Metrum license, revocation bundle or lease")
	}
	out["signature_valid"] = perr == nil
	if perr != nil {
		out["error"] = verify.SafeError(perr)
	}
	if *asJSON {
		printJSON(stdout, out)
	} else {
		for _, k := range slices.Sorted(maps.Keys(out)) {
			fmt.Fprintf(stdout, "%-22s %s\n", k+":", humanValue(out[k]))
		}
	}
	if perr != nil {
		return exitBlocked
	}
	return exitOK
}

func cmdKeys(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("keys", stderr)
	keyset := fs.String("keyset", "", "key set file (default: the embedded release key set)")
	asJSON := fs.Bool("json", false, "print JSON")
	strict := fs.Bool("strict", false, "exit 1 unless the set has keys, every entry is trusted and every key names its products (what a release needs)")
	if _, err := parseInterleaved(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	ks, err := loadKeySet(*keyset, false)
	if err != nil {
		return fail(stderr, err)
	}
	var rows []map[string]any
	for _, k := range ks.Keys() {
		products := k.Products
		if products == nil {
			products = []string{}
		}
		row := map[string]any{"kid": k.KID, "alg": k.Alg, "purposes": k.Purposes, "products": products}
		if !k.NotAfter.IsZero() {
			row["not_after"] = verify.FormatTime(k.NotAfter)
		}
		rows = append(rows, row)
	}
	if *asJSON {
		if rows == nil {
			rows = []map[string]any{}
		}
		printJSON(stdout, map[string]any{"keys": rows, "untrusted": ks.Dropped})
		return strictCheck(*strict, ks, stderr)
	}
	if len(rows) == 0 {
		fmt.Fprintln(stdout, "no trusted keys: "+errNoKeys)
	}
	for _, k := range ks.Keys() {
		na := ""
		if !k.NotAfter.IsZero() {
			na = "  not_after " + verify.FormatTime(k.NotAfter)
		}
		products := "products " + strings.Join(k.Products, ", ")
		if len(k.Products) == 0 {
			products = "no products: trusts nothing"
		}
		fmt.Fprintf(stdout, "%s  %-6s %s  %s%s\n", k.KID, k.Alg, humanValue(k.Purposes), products, na)
	}
	for _, d := range ks.Dropped {
		fmt.Fprintln(stdout, "untrusted:", d)
	}
	return strictCheck(*strict, ks, stderr)
}

// strictCheck is `keys --strict`: what scripts/release-verifier requires of the key
// set it embeds. A release that trusts nothing, or trusts keys a v1.2 verifier
// ignores, would verify no customer's license.
func strictCheck(strict bool, ks *verify.KeySet, stderr io.Writer) int {
	if !strict {
		return exitOK
	}
	var bad []string
	if len(ks.Keys()) == 0 {
		bad = append(bad, "the key set has no keys")
	}
	if len(ks.Dropped) > 0 {
		bad = append(bad, fmt.Sprintf("%d entries are not trusted: %s", len(ks.Dropped), strings.Join(ks.Dropped, "; ")))
	}
	if np := ks.NoProducts(); len(np) > 0 {
		bad = append(bad, "keys without products (they trust nothing): "+strings.Join(np, ", "))
	}
	for _, b := range bad {
		fmt.Fprintln(stderr, "verifier: keys --strict:", b)
	}
	if len(bad) > 0 {
		return exitBlocked
	}
	return exitOK
}
