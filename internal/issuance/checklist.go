package issuance

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/templates"
)

// SummaryFile is the safe summary delivered with a license (license-summary.json):
// the scalar metadata stored when it was issued, and its current state as the
// customer API's safe summary says it (entitlements.SafeSummaryOf, the one status
// truth). Informational only: it is not signed and is never installed in place of
// the license.
func SummaryFile(l *entitlements.License) []byte {
	m := map[string]any{}
	for k, v := range l.Summary {
		m[k] = v
	}
	cur := entitlements.SafeSummaryOf(l, time.Now())
	m["status"], m["superseded_by"], m["superseded_effective_at"] = cur.Status, cur.SupersededBy, cur.SupersededEffectiveAt
	m["note"] = "Informational summary. Install the signed " + l.FileName + ", never this file."
	b, _ := json.Marshal(m, jsontext.WithIndent("  "), json.Deterministic(true))
	return append(b, '\n')
}

// Checklist is the operator checklist delivered with a license (the seed's steps:
// verify, install atomically, restart or wait, /readyz, the admin status check, one
// caller smoke for a licensed feature), in Markdown, built from safe fields only.
func Checklist(l *entitlements.License) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	exp := l.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
	w("# Operator checklist: %s", l.ID)
	w("")
	// The customer's name is the only text of a person's in the checklist: escaped, on
	// one line, so it can't add a step or hide the real ones.
	w("- Customer: %s (%s)", markdownText(l.CustomerName), l.CustomerID)
	w("- Product: %s · SKU: %s (template v%d) · key ID: %s", l.Product, l.SKU, l.TemplateVersion, l.KeyID)
	w("- Valid from %s until %s", l.NotBefore.UTC().Format("2006-01-02 15:04 UTC"), exp)
	if len(l.Terms.Features) > 0 {
		w("- Features: %s", strings.Join(l.Terms.Features, ", "))
	}
	if lim := limitsText(l.Terms.Limits); lim != "" {
		w("- Limits: %s", lim)
	}
	if l.Supersedes != "" {
		w("- Replaces %s: install this file before the old one stops working (see the revocation bundle).", l.Supersedes)
	}
	w("")
	feature := "routing"
	if len(l.Terms.Features) > 0 && !slices.Contains(l.Terms.Features, feature) {
		feature = l.Terms.Features[0]
	}
	if l.Product == templates.ProductCoreSDK {
		w("1. Verify the token offline before deploying:")
		w("   `verifier verify --license %s --product coresdk` (or `core license verify --token \"$(cat %s)\"`)", l.FileName, l.FileName)
		w("2. Install it: `core license install --file %s` (writes /etc/coresdk/license.token).", l.FileName)
		w("3. Send SIGHUP to the sidecar, or restart it.")
		w("4. `core license status`: expect Plan %s, Status active, Expires %s.", l.SKU, l.ExpiresAt.UTC().Format("2006-01-02"))
		w("5. One request to a licensed feature (%s) succeeds; alert on coresdk.license.days_until_expiry < 30.", feature)
		w("")
		w("Never edit %s: any change invalidates the signature.", l.FileName)
		return b.String()
	}
	flags := "--product " + l.Product
	if fp := l.Terms.InstanceFingerprint; fp != "" {
		flags += " --instance-fingerprint " + fp
	}
	w("1. Verify the file offline: `verifier verify --license %s %s --feature %s`.", l.FileName, flags, feature)
	w("2. Back up the current license file under your secret-handling policy.")
	w("3. Install it atomically at `server.license.path`, mounted read-only:")
	w("   `verifier install --license %s --dest /app/config/license.json %s`.", l.FileName, flags)
	w("   Keep `server.license.state_path` on durable private storage; never edit the license or the state file.")
	if fp := l.Terms.InstanceFingerprint; fp != "" {
		w("   This license is bound to one instance: set `server.license.instance_fingerprint: \"%s\"`.", fp)
	}
	if l.Terms.LeaseTTLSeconds > 0 {
		w("   This license needs an online lease (renewed every %s): configure the lease token you were given with it.", durationText(l.Terms.LeaseTTLSeconds))
	}
	w("4. Restart the router, or wait for `server.license.recheck_interval`.")
	w("5. `curl -fsS \"$ROUTER_BASE_URL/readyz\"` answers OK.")
	w("6. `curl -i -u admin:… \"$ROUTER_BASE_URL/admin/license/status\"` shows status valid, license_id %s, sku %s, expiry %s.", l.ID, l.SKU, exp)
	w("7. One caller smoke for a licensed feature (%s): `curl -i -H \"Authorization: Bearer $ROUTER_TOKEN\" \"$ROUTER_BASE_URL/v1/models\"`.", feature)
	w("")
	w("This checklist and license-summary.json are informational: install the signed %s, never these.", l.FileName)
	return b.String()
}

func limitsText(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func durationText(s int64) string {
	switch {
	case s%86400 == 0:
		return fmt.Sprintf("%dd", s/86400)
	case s%3600 == 0:
		return fmt.Sprintf("%dh", s/3600)
	}
	return fmt.Sprintf("%ds", s)
}

// DeliveryFile is one of a license's deliverables: the exact stored signed bytes
// (file), the safe summary, or the operator checklist.
func DeliveryFile(l *entitlements.License, what string) (*entitlements.File, error) {
	var f *entitlements.File
	switch what {
	case entitlements.WhatFile:
		f = &entitlements.File{Bytes: l.File, ContentType: l.ContentType, Name: l.FileName}
	case entitlements.WhatSummary:
		f = &entitlements.File{Bytes: SummaryFile(l), ContentType: "application/json", Name: "license-summary.json"}
	case entitlements.WhatChecklist:
		f = &entitlements.File{Bytes: []byte(Checklist(l)), ContentType: "text/markdown; charset=utf-8", Name: "operator-checklist.md"}
	default:
		return nil, entitlements.NotFound("download", what)
	}
	f.BrowserName = entitlements.BrowserFileName(l, f.Name)
	return f, nil
}

// markdownText makes user-supplied text inert in Markdown: control characters
// (newlines among them) become spaces, and every character Markdown or HTML gives a
// meaning is escaped with a backslash.
func markdownText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029:
			b.WriteByte(' ')
		case strings.ContainsRune("\\`*_{}[]()<>#+-.!|~&\"'=:", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
