package ui

import (
	"slices"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

// Terms are a license's terms as people read them.
type Terms struct {
	Features []Value
	Limits   []Value
	// Grace, Instance and Lease say the grace period, the instance binding and the
	// lease policy in words.
	Grace, Instance, Lease string
}

// TermsOf is what a license grants, in words.
func TermsOf(t entitlements.Terms) Terms {
	return Terms{Features: Features(t.Features), Limits: Limits(t.Limits), Grace: GraceText(t.GracePeriodSeconds),
		Instance: InstanceText(t.InstanceFingerprint), Lease: LeaseText(t.LeaseTTLSeconds)}
}

// GraceText says a grace period: how long a host keeps serving after a transient
// validation error.
func GraceText(seconds int64) string {
	if seconds <= 0 {
		return "none"
	}
	return Seconds(seconds)
}

// InstanceText says a license's instance binding.
func InstanceText(fingerprint string) string {
	if fingerprint == "" {
		return "any instance"
	}
	return "only the instance " + fingerprint
}

// LeaseText says a license's online lease policy.
func LeaseText(ttlSeconds int64) string {
	if ttlSeconds <= 0 {
		return "not required: works offline"
	}
	return "required: each host holds a lease of " + Seconds(ttlSeconds) + ", renewed online"
}

// Change is one term where an entitlement differs from its template's default.
type Change struct {
	Name, Wire string
	// Now is this entitlement's value, Default the template's, both in words.
	Now, Default string
}

// Changes lists where got differs from def (an entitlement's terms from its
// template's), in the order pages list terms: features added and removed, each
// limit, grace, instance scope, lease.
func Changes(def, got entitlements.Terms) []Change {
	var out []Change
	for _, f := range got.Features {
		if !slices.Contains(def.Features, f) {
			out = append(out, Change{Name: FeatureName(f), Wire: f, Now: "included", Default: "not included"})
		}
	}
	for _, f := range def.Features {
		if !slices.Contains(got.Features, f) {
			out = append(out, Change{Name: FeatureName(f), Wire: f, Now: "not included", Default: "included"})
		}
	}
	all := map[string]int64{}
	for k, v := range def.Limits {
		all[k] = v
	}
	for k, v := range got.Limits {
		all[k] = v
	}
	for _, v := range Limits(all) {
		d, inDef := def.Limits[v.Wire]
		g, inGot := got.Limits[v.Wire]
		if inDef == inGot && d == g {
			continue
		}
		c := Change{Name: v.Name, Wire: v.Wire, Now: "unlimited", Default: "unlimited"}
		if inGot {
			c.Now = LimitText(v.Wire, g)
		}
		if inDef {
			c.Default = LimitText(v.Wire, d)
		}
		out = append(out, c)
	}
	if def.GracePeriodSeconds != got.GracePeriodSeconds {
		out = append(out, Change{Name: "Grace period", Wire: "grace_period_seconds", Now: GraceText(got.GracePeriodSeconds), Default: GraceText(def.GracePeriodSeconds)})
	}
	if def.InstanceFingerprint != got.InstanceFingerprint {
		out = append(out, Change{Name: "Instance", Wire: "instance_fingerprint", Now: InstanceText(got.InstanceFingerprint), Default: InstanceText(def.InstanceFingerprint)})
	}
	if def.LeaseTTLSeconds != got.LeaseTTLSeconds {
		out = append(out, Change{Name: "Online lease", Wire: "lease", Now: LeaseText(got.LeaseTTLSeconds), Default: LeaseText(def.LeaseTTLSeconds)})
	}
	return out
}

// TermChange is the Change of a term's length, when it differs from the template's
// (nil otherwise).
func TermChange(got, def time.Duration) *Change {
	if got == def {
		return nil
	}
	return &Change{Name: "Term", Wire: "expires_at", Now: Duration(got), Default: Duration(def)}
}
