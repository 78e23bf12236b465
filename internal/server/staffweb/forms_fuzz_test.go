package staffweb

import (
	"net/url"
	"testing"

	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

// FuzzEntitlementForm: whatever a form carries, the decoder never panics, reads only
// what the template allows, keeps every number it passes on within range, and either
// hands the template a value or says why not beside the field.
func FuzzEntitlementForm(f *testing.F) {
	f.Add("enterprise-annual", "max_instances=4&grace_hours=36&feature=routing&fingerprint=node-1&contract=PO-1&term_days=400")
	f.Add("pilot-30d", "limit.max_instances=-1&grace_hours=18446744074&feature=nope&feature=routing&feature=routing&features_shown=1")
	f.Add("team", "limit.max_tenants=99999999999999999999&grace_hours=x&term_days=-1")
	f.Fuzz(func(t *testing.T, tmpl, query string) {
		form, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		v, tp := newEntitlementForm("cus_01HZY3QK8Y0000000000000001", tmpl)
		if tp == nil {
			return
		}
		in := decodeEntitlementForm(form, tp, &v, epoch)
		for name, n := range in.Overrides.Limits {
			if n < 0 || n > entitlements.MaxLimitValue || !contains(tp.OverridableLimits, name) {
				t.Fatalf("limit %s=%d passed on", name, n)
			}
		}
		for _, ft := range in.Overrides.Features {
			if !contains(tp.AllowedFeatures, ft) {
				t.Fatalf("feature %q passed on", ft)
			}
		}
		if g := in.Overrides.GracePeriodSeconds; g != nil && (*g < 0 || tp.MaxGrace == 0) {
			t.Fatalf("grace %d passed on", *g)
		}
		// The template's own check decides the ranges, in integers.
		e := &entitlements.Entitlement{Product: tp.Product, Kind: entitlements.KindNew, Overrides: in.Overrides,
			StartsAt: epoch, EndsAt: epoch.Add(tp.Term)}
		if !in.EndsAt.IsZero() {
			e.StartsAt, e.EndsAt = in.StartsAt, in.EndsAt
			if tp.FixedTerm || !in.EndsAt.After(in.StartsAt) {
				t.Fatalf("a term of %s passed on for %s", in.EndsAt.Sub(in.StartsAt), tp.Name)
			}
		}
		if err := tp.CheckEntitlement(e); err == nil && in.Overrides.GracePeriodSeconds != nil && *in.Overrides.GracePeriodSeconds > int64(tp.MaxGrace.Seconds()) {
			t.Fatalf("grace %d over the cap accepted", *in.Overrides.GracePeriodSeconds)
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var epoch = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
