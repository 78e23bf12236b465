package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/metrum/licensing/verify"
)

// cmdStatus is `verifier status`, in the shape of CoreSDK's `core license status`:
// Plan, Status, Expires, Tenants in use, RPS limit, Features enabled. --tenants-in-use
// N is the count to show against max_tenants, and is checked as a requested limit (a
// count above the plan's is license-limit-exceeded).
func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", stderr)
	var c checkFlags
	c.register(fs)
	tenants := fs.Int64("tenants-in-use", -1, "active tenants, shown against max_tenants and checked against it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		return fail(stderr, usageError{fmt.Sprintf("unexpected arguments: %v", fs.Args())})
	}
	if *tenants < -1 {
		return fail(stderr, usageError{"--tenants-in-use must not be negative"})
	}
	if *tenants >= 0 {
		c.limits["max_tenants"] = *tenants
	}
	o, now, err := c.options()
	if err != nil {
		return fail(stderr, err)
	}
	warnKeys(stderr, o.KeySet)
	r := verify.Verify(o)
	l := r.License
	state := statusWord(r)
	if c.asJSON {
		out := map[string]any{"status": state, "reason": r.Reason, "license_id": r.LicenseID, "plan": nil, "org": nil,
			"expires_at": nil, "days_until_expiry": nil, "tenants_in_use": nil, "tenants_max": nil, "rps_limit": nil,
			"features": r.Features, "limits": r.Limits, "warnings": r.Warnings}
		if l != nil {
			out["expires_at"], out["days_until_expiry"] = verify.FormatTime(l.ExpiresAt), verify.DaysUntil(now, l.ExpiresAt)
			if l.Form == "jws" {
				out["plan"], out["org"] = l.Plan, org(l.CustomerID)
			}
			if v, ok := l.Limits["max_tenants"]; ok {
				out["tenants_max"] = v
			}
			if v, ok := l.Limits["max_rps"]; ok {
				out["rps_limit"] = v
			}
		}
		if *tenants >= 0 {
			out["tenants_in_use"] = *tenants
		}
		printJSON(stdout, out)
	} else {
		printStatus(stdout, r, state, *tenants, now)
	}
	if r.OK() {
		return exitOK
	}
	return exitBlocked
}

// statusWord is the status in CoreSDK's words: active, or grace / blocked with the
// reason.
func statusWord(r *verify.Result) string {
	switch r.Status {
	case verify.StatusValid:
		return "active"
	case verify.StatusGrace:
		return "grace (" + r.Reason + ")"
	}
	return "blocked (" + r.Reason + ")"
}

func printStatus(w io.Writer, r *verify.Result, state string, tenants int64, now time.Time) {
	l := r.License
	if l != nil && l.Form == "jws" {
		fmt.Fprintf(w, "Plan: %s\n", l.Plan)
	} else if l != nil {
		fmt.Fprintf(w, "Product: %s\nSKU: %s\n", l.Product, l.SKU)
	}
	fmt.Fprintf(w, "Status: %s\n", state)
	if r.Status != verify.StatusValid && r.Detail != "" {
		fmt.Fprintf(w, "Why: %s\n", r.Detail)
	}
	if l != nil {
		fmt.Fprintf(w, "Expires: %s\n", expiresText(now, l.ExpiresAt, dateOnly))
		if l.Form == "jws" {
			if tenants >= 0 {
				fmt.Fprintf(w, "Tenants in use: %d / %s\n", tenants, limitText(l.Limits, "max_tenants", ""))
			} else {
				fmt.Fprintf(w, "Tenants: %s\n", limitText(l.Limits, "max_tenants", " max"))
			}
			fmt.Fprintf(w, "RPS limit: %s\n", limitText(l.Limits, "max_rps", ""))
		} else if len(l.Limits) > 0 {
			fmt.Fprintf(w, "Limits: %s\n", humanValue(l.Limits))
		}
		fmt.Fprintf(w, "Features enabled: %s\n", featureText(l.Features))
	}
	for _, warn := range r.Warnings {
		if tenants >= 0 && strings.Contains(warn, `limit "max_tenants" is not in the license`) {
			continue // unlimited tenants: shown as such above
		}
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
}
