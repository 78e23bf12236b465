package staffweb

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/templates"
	pages "github.com/metrum/licensing/web/staff"
)

// decodeEntitlementForm reads the new-entitlement form for template t into the
// service's input, keeping what was typed in v (so a refused form is shown again with
// it) and a message beside every field that is not a valid value. Only the overrides
// the template allows are read; every number is parsed as an integer here, its range
// checked by the template (CheckEntitlement). The features ticked are an override
// only when they differ from the template's own; a term in days starts at now.
func decodeEntitlementForm(form url.Values, t *templates.Template, v *pages.StaffNewEntitlement, now time.Time) entitlements.EntitlementInput {
	in := entitlements.EntitlementInput{CustomerID: v.CustomerID, Template: t.Name, InstanceFingerprint: strings.TrimSpace(form.Get("fingerprint")),
		ContractRef: strings.TrimSpace(form.Get("contract")), Reason: strings.TrimSpace(form.Get("reason"))}
	v.Fingerprint, v.ContractRef, v.Reason = in.InstanceFingerprint, in.ContractRef, in.Reason
	clear(v.ChosenFeatures)
	var chosen []string
	for _, f := range form["feature"] {
		if slices.Contains(t.AllowedFeatures, f) && !slices.Contains(chosen, f) {
			chosen = append(chosen, f)
			v.ChosenFeatures[f] = true
		}
	}
	switch {
	case len(t.AllowedFeatures) == 0:
	case len(chosen) == 0 && form.Get("features_shown") != "":
		v.Errors["features"] = "tick at least one feature (the template's own are ticked at first)"
	case !sameSet(chosen, t.Features):
		in.Overrides.Features = chosen
	}
	for _, l := range t.OverridableLimits {
		raw := strings.TrimSpace(form.Get("limit." + l))
		v.Limits[l] = raw
		if raw == "" {
			continue
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 || n > entitlements.MaxLimitValue {
			v.Errors["limits."+l] = "a whole number from 0 to 9,007,199,254,740,991"
			continue
		}
		if in.Overrides.Limits == nil {
			in.Overrides.Limits = map[string]int64{}
		}
		in.Overrides.Limits[l] = n
	}
	if g := strings.TrimSpace(form.Get("grace_hours")); g != "" && t.MaxGrace > 0 {
		v.Grace = g
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil || n < 0 || n > maxGraceHours {
			v.Errors["grace_period_seconds"] = "a whole number of hours from 0 to " + strconv.FormatInt(int64(t.MaxGrace/time.Hour), 10)
		} else {
			s := n * 3600
			in.Overrides.GracePeriodSeconds = &s
		}
	}
	if d := strings.TrimSpace(form.Get("term_days")); d != "" && !t.FixedTerm {
		v.TermDays = d
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > maxTermDays {
			v.Errors["ends_at"] = "a whole number of days from 1 to " + strconv.Itoa(int(t.MaxTerm/templates.Day))
		} else {
			in.StartsAt = now.UTC().Truncate(time.Second)
			in.EndsAt = in.StartsAt.Add(time.Duration(n) * templates.Day)
		}
	}
	return in
}

// Bounds of the form's numbers before the template's own check (no overflow).
const (
	maxGraceHours = 1 << 30
	maxTermDays   = 100_000
)

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
