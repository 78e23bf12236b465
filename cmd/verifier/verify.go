package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/metrum/licensing/verify"
)

// cmdVerify runs `verify`, or `install` (mode "install": verify, then write atomically).
func cmdVerify(args []string, stdout, stderr io.Writer, mode string) int {
	fs := newFlags(mode, stderr)
	if mode == "" {
		fs = newFlags("verify", stderr)
	}
	license := fs.String("license", "", "license file (license.json or license.jwk)")
	dest := fs.String("dest", "", "install: where to write the verified license")
	product := fs.String("product", "", "expected product (absent: no product check)")
	fp := fs.String("instance-fingerprint", "", "this host's instance fingerprint")
	var features multi
	fs.Var(&features, "feature", "a feature that must be licensed (repeatable)")
	lim := limits{}
	fs.Var(lim, "limit", "NAME=VALUE: a value that must be within the licensed limit (repeatable)")
	bundle := fs.String("revocation", "", "revocation bundle file (turns revocation mode to file)")
	requireCurrent := fs.Bool("require-current-bundle", false, "block unless a current revocation bundle is present (turns revocation mode to file)")
	failClosed := fs.Bool("fail-closed-on-bundle-error", false, "block when the bundle is malformed, expired, untrusted or rolled back")
	lease := fs.String("lease", "", "lease file")
	state := fs.String("state", "", "state file (clock-rollback, grace and bundle-rollback memory)")
	keyset := fs.String("keyset", "", "trusted key set (default: the embedded release key set)")
	now := fs.String("now", "", "evaluate at this time, RFC 3339 (default: the system clock)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		return fail(stderr, usageError{fmt.Sprintf("unexpected arguments: %v", fs.Args())})
	}
	if *license == "" {
		return fail(stderr, usageError{"--license FILE is required"})
	}
	if mode == "install" && *dest == "" {
		return fail(stderr, usageError{"install needs --dest PATH"})
	}
	ks, err := loadKeySet(*keyset)
	if err != nil {
		return fail(stderr, err)
	}
	t, err := parseNow(*now)
	if err != nil {
		return fail(stderr, err)
	}
	// Revocation mode is file when --revocation or --require-current-bundle is given
	// (formats.md v1.2, section 8): Verify derives it from BundlePath and RequireCurrent.
	o := verify.Options{LicensePath: *license, Product: *product, InstanceFingerprint: *fp, Features: features,
		Limits: lim, BundlePath: *bundle, RequireCurrent: *requireCurrent,
		FailClosed: *failClosed, LeasePath: *lease, StatePath: *state, KeySet: ks, Now: t}
	warnKeys(stderr, ks)
	var r *verify.Result
	installed := false
	if mode == "install" {
		r, installed, err = install(o, *dest)
		if err != nil {
			return fail(stderr, err)
		}
	} else {
		r = verify.Verify(o)
	}
	if *asJSON {
		printJSON(stdout, r)
		if r.Detail != "" {
			fmt.Fprintf(stderr, "verifier: %s: %s\n", r.Reason, r.Detail)
		}
	} else {
		printHuman(stdout, r)
	}
	if mode == "install" {
		// install succeeds only when it wrote the file: a grace result means the new
		// file itself did not verify, so it is exit 1 here although verify says 0.
		if !installed {
			fmt.Fprintf(stderr, "verifier: not installed: %s is unchanged\n", *dest)
			return exitBlocked
		}
		fmt.Fprintf(stderr, "verifier: installed %s at %s\n", r.LicenseID, *dest)
		return exitOK
	}
	if r.OK() {
		return exitOK
	}
	return exitBlocked
}

// install reads the license once into a temp file beside dest, verifies that very
// copy, and renames it into place only when valid: what is checked is what lands.
// Grace is not enough to install: grace means the new file itself did not verify.
// installed is true only when dest was written.
func install(o verify.Options, dest string) (r *verify.Result, installed bool, err error) {
	data, err := readLimited(o.LicensePath, verify.MaxLicenseSize)
	if err != nil {
		// Verify the same unreadable path, so the result names why (license-missing).
		// Nothing is written whatever it says: there are no bytes to install.
		r := verify.Verify(o)
		r.Warnings = append(r.Warnings, "not installed: the license file could not be read")
		return r, false, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".verify-*")
	if err != nil {
		return nil, false, err
	}
	tmpPath := tmp.Name()
	defer os.Remove(tmpPath)
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr != nil || cerr != nil {
		return nil, false, errors.Join(werr, cerr)
	}
	o.LicensePath = tmpPath
	r = verify.Verify(o)
	if r.Status != verify.StatusValid {
		r.Warnings = append(r.Warnings, "not installed: the license is not valid")
		return r, false, nil
	}
	if err := verify.WriteFileAtomic(dest, data, 0o644); err != nil {
		return nil, false, err
	}
	return r, true, nil
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return b[:max+1], nil // too large: Verify will say license-invalid
	}
	return b, nil
}

func printHuman(w io.Writer, r *verify.Result) {
	status := strings.ToUpper(r.Status)
	if r.Reason != "" {
		status += " (" + r.Reason + ")"
	}
	fmt.Fprintf(w, "Status:     %s\n", status)
	if r.Detail != "" {
		fmt.Fprintf(w, "Why:        %s\n", r.Detail)
	}
	if l := r.License; l != nil {
		if l.Form == "jws" {
			fmt.Fprintf(w, "Plan:       %s\nOrg:        %s\n", l.Plan, l.CustomerID)
		} else {
			fmt.Fprintf(w, "Product:    %s (%s, template v%d)\nCustomer:   %s (%s)\n", l.Product, l.SKU, l.TemplateVersion, l.CustomerName, l.CustomerID)
		}
		fmt.Fprintf(w, "License:    %s\n", l.LicenseID)
		days := int(l.ExpiresAt.Sub(nowOf(r)).Hours() / 24)
		fmt.Fprintf(w, "Expires:    %s (%d days)\n", l.ExpiresAt.Format("2006-01-02 15:04 UTC"), days)
		if l.Form == "jws" {
			fmt.Fprintf(w, "Tenants:    %s\nRPS limit:  %s\n", limitText(l.Limits, "max_tenants", " max"), limitText(l.Limits, "max_rps", ""))
		} else if len(l.Limits) > 0 {
			var parts []string
			for _, k := range sortedNames(l.Limits) {
				parts = append(parts, fmt.Sprintf("%s=%d", k, l.Limits[k]))
			}
			fmt.Fprintf(w, "Limits:     %s\n", strings.Join(parts, ", "))
		}
		fmt.Fprintf(w, "Features:   %s\n", strings.Join(l.Features, ", "))
		if l.InstanceFingerprint != "" {
			fmt.Fprintf(w, "Instance:   %s\n", l.InstanceFingerprint)
		}
		fmt.Fprintf(w, "Signature:  valid (%s, key %s)\n", l.Algorithm, l.KeyID)
	}
	if r.BundleSequence != nil {
		fmt.Fprintf(w, "Revocation: bundle sequence %d checked\n", *r.BundleSequence)
	}
	if r.LeaseExpiresAt != nil {
		fmt.Fprintf(w, "Lease:      expires %s\n", *r.LeaseExpiresAt)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "Warning:    %s\n", warn)
	}
}
