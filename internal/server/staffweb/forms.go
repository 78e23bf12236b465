package staffweb

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/templates"
	pages "github.com/metrum/licensing/web/staff"
)

// decodeEntitlementForm reads the new-entitlement form for template t into the
// service's input, keeping what was typed in v (so a refused form is shown again with
// it) and a message beside every field that is not a valid value. Only the overrides
// the template allows are read; every number is parsed as an integer here, its range
// checked by the template (CheckEntitlement).
func decodeEntitlementForm(form url.Values, t *templates.Template, v *pages.StaffNewEntitlement) entitlements.EntitlementInput {
	in := entitlements.EntitlementInput{CustomerID: v.CustomerID, Template: t.Name, InstanceFingerprint: strings.TrimSpace(form.Get("fingerprint")),
		ContractRef: strings.TrimSpace(form.Get("contract"))}
	v.Fingerprint, v.ContractRef = in.InstanceFingerprint, in.ContractRef
	for _, f := range form["feature"] {
		if slices.Contains(t.AllowedFeatures, f) && !slices.Contains(in.Overrides.Features, f) {
			in.Overrides.Features = append(in.Overrides.Features, f)
			v.ChosenFeatures[f] = true
		}
	}
	for _, l := range t.OverridableLimits {
		raw := strings.TrimSpace(form.Get("limit." + l))
		v.Limits[l] = raw
		if raw == "" {
			continue
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 || n > entitlements.MaxLimitValue {
			v.Errors["limits."+l] = "a whole number from 0 to 9007199254740991"
			continue
		}
		if in.Overrides.Limits == nil {
			in.Overrides.Limits = map[string]int64{}
		}
		in.Overrides.Limits[l] = n
	}
	if g := strings.TrimSpace(form.Get("grace")); g != "" && t.MaxGrace > 0 {
		v.Grace = g
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil || n < 0 {
			v.Errors["grace"] = "a whole number of seconds ≥ 0"
		} else {
			in.Overrides.GracePeriodSeconds = &n
		}
	}
	return in
}
