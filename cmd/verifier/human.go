package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/metrum/licensing/verify"
)

// printHuman prints a result for a person. A CoreSDK token prints in the shape of
// CoreSDK's `core license verify` (its document's example, line for line); a router
// license as before. Day counts are from now (--now), never the wall clock.
func printHuman(w io.Writer, r *verify.Result, now time.Time) {
	if l := r.License; l != nil && l.Form == "jws" {
		printCoreSDK(w, r, now)
		return
	}
	status := strings.ToUpper(r.Status)
	if r.Reason != "" {
		status += " (" + r.Reason + ")"
	}
	fmt.Fprintf(w, "Status:     %s\n", status)
	if r.Detail != "" {
		fmt.Fprintf(w, "Why:        %s\n", r.Detail)
	}
	if l := r.License; l != nil {
		fmt.Fprintf(w, "Product:    %s (%s, template v%d)\nCustomer:   %s (%s)\n", l.Product, l.SKU, l.TemplateVersion, l.CustomerName, l.CustomerID)
		fmt.Fprintf(w, "License:    %s\n", l.LicenseID)
		fmt.Fprintf(w, "Expires:    %s\n", expiresText(now, l.ExpiresAt, dateTime))
		if len(l.Limits) > 0 {
			fmt.Fprintf(w, "Limits:     %s\n", humanValue(l.Limits))
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

// printCoreSDK is CoreSDK's verify output: Plan, Org, Expires, Tenants, Features,
// Signature. A status line comes first only when the token is not valid.
func printCoreSDK(w io.Writer, r *verify.Result, now time.Time) {
	l := r.License
	if r.Status != verify.StatusValid {
		fmt.Fprintf(w, "Status: %s (%s)\n", strings.ToUpper(r.Status), r.Reason)
		if r.Detail != "" {
			fmt.Fprintf(w, "Why: %s\n", r.Detail)
		}
	}
	fmt.Fprintf(w, "Plan: %s\nOrg: %s\nExpires: %s\n", l.Plan, org(l.CustomerID), expiresText(now, l.ExpiresAt, dateOnly))
	fmt.Fprintf(w, "Tenants: %s\n", limitText(l.Limits, "max_tenants", " max"))
	fmt.Fprintf(w, "Features: %s\n", featureText(l.Features))
	fmt.Fprintf(w, "Signature: valid (%s)\n", l.Algorithm)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
}

// org is the organisation a CoreSDK token names: its sub without the org_ prefix
// ("org_acme" is "acme"); a sub in another form (the issuer's tokens carry the
// customer ID, cus_…) is shown as it is.
func org(sub string) string {
	if o, ok := strings.CutPrefix(sub, "org_"); ok && o != "" {
		return o
	}
	return sub
}

func featureText(fs []string) string {
	if len(fs) == 0 {
		return "none"
	}
	return strings.Join(fs, ", ")
}
