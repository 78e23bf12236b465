// Package templates turns an approved entitlement into a license payload. A template
// fixes a SKU's term, features, limits, grace and lease policy, and what staff may
// override. Templates are versioned: a change is a new version, and every license
// records the name and version it came from, so nothing already issued changes.
package templates

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

// License forms: the signed envelope of formats.md sections 2–3, or the CoreSDK
// compact JWS of section 7.
const (
	FormEnvelope = "envelope"
	FormJWS      = "jws"
)

// FormOf returns the license form of a product, "" for an unknown product.
func FormOf(product string) string {
	switch product {
	case ProductRouter:
		return FormEnvelope
	case ProductCoreSDK:
		return FormJWS
	}
	return ""
}

// Day is 24 hours, for template terms.
const Day = 24 * time.Hour

// LeaseRule is a template's online lease policy.
type LeaseRule struct {
	Required   bool
	TTLSeconds int64
}

// Template is one version of a SKU.
type Template struct {
	Name    string
	Version int
	Product string
	Summary string
	// Term is the default length of the license. With FixedTerm the entitlement's
	// term must be exactly this long; otherwise it may run up to MaxTerm.
	Term      time.Duration
	FixedTerm bool
	MaxTerm   time.Duration
	Features  []string
	Limits    map[string]int64
	Grace     time.Duration
	MaxGrace  time.Duration // 0: grace is not overridable
	Lease     *LeaseRule
	// AllowedFeatures may be chosen by an override (nil: features are fixed).
	AllowedFeatures []string
	// OverridableLimits names the limits an override may set.
	OverridableLimits []string
	// TopUp marks credit packs: the license replaces an active one.
	TopUp bool
}

// Key is "name@version".
func (t *Template) Key() string { return fmt.Sprintf("%s@%d", t.Name, t.Version) }

// CheckEntitlement validates an entitlement's term and overrides against the template.
func (t *Template) CheckEntitlement(e *entitlements.Entitlement) error {
	f := map[string]string{}
	if e.Product != t.Product {
		f["template"] = fmt.Sprintf("template %s is for %s, not %s", t.Name, t.Product, e.Product)
	}
	term := e.EndsAt.Sub(e.StartsAt)
	switch {
	case t.FixedTerm && term != t.Term:
		f["ends_at"] = fmt.Sprintf("%s licenses run exactly %s", t.Name, human(t.Term))
	case !t.FixedTerm && term > t.MaxTerm:
		f["ends_at"] = fmt.Sprintf("%s licenses run at most %s", t.Name, human(t.MaxTerm))
	}
	o := e.Overrides
	if len(o.Features) > 0 {
		if t.AllowedFeatures == nil {
			f["features"] = t.Name + " does not allow feature overrides"
		}
		for _, ft := range o.Features {
			if t.AllowedFeatures != nil && !slices.Contains(t.AllowedFeatures, ft) {
				f["features"] = fmt.Sprintf("feature %q is not available on %s", ft, t.Name)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(o.Limits)) {
		if !slices.Contains(t.OverridableLimits, name) {
			f["limits"] = fmt.Sprintf("limit %q can't be overridden on %s", name, t.Name)
		} else if o.Limits[name] < 0 {
			f["limits"] = fmt.Sprintf("limit %q must be ≥ 0", name)
		}
	}
	if g := o.GracePeriodSeconds; g != nil {
		if t.MaxGrace == 0 {
			f["grace_period_seconds"] = t.Name + " does not allow a grace override"
		} else if *g < 0 || time.Duration(*g)*time.Second > t.MaxGrace {
			f["grace_period_seconds"] = fmt.Sprintf("grace must be 0 to %d seconds", int64(t.MaxGrace/time.Second))
		}
	}
	return entitlements.Invalid(f)
}

// Input is what a render needs beyond the template and entitlement.
type Input struct {
	LicenseID    string
	Issuer       string
	CustomerName string
	IssuedAt     time.Time
	// RenewURL is the lease API's base for licenses with a lease policy.
	RenewURL string
}

// Render produces the license payload for an envelope-form product.
func (t *Template) Render(e *entitlements.Entitlement, in Input) (*verify.LicensePayload, error) {
	if err := t.CheckEntitlement(e); err != nil {
		return nil, err
	}
	features := slices.Clone(t.Features)
	if len(e.Overrides.Features) > 0 {
		features = slices.Clone(e.Overrides.Features)
	}
	slices.Sort(features)
	features = slices.Compact(features)
	limits := maps.Clone(t.Limits)
	if limits == nil {
		limits = map[string]int64{}
	}
	maps.Copy(limits, e.Overrides.Limits)
	grace := int64(t.Grace / time.Second)
	if e.Overrides.GracePeriodSeconds != nil {
		grace = *e.Overrides.GracePeriodSeconds
	}
	p := &verify.LicensePayload{
		Schema: 1, LicenseID: in.LicenseID, Product: t.Product, Issuer: in.Issuer,
		CustomerID: e.CustomerID, CustomerName: in.CustomerName, SKU: t.Name,
		TemplateVersion: int64(t.Version), IssuedAt: verify.FormatTime(in.IssuedAt),
		NotBefore: verify.FormatTime(e.StartsAt), ExpiresAt: verify.FormatTime(e.EndsAt),
		Features: features, Limits: limits, GracePeriodSeconds: grace,
		InstanceFingerprint: e.InstanceFingerprint, Supersedes: e.Supersedes,
	}
	if t.Lease != nil {
		if in.RenewURL == "" {
			return nil, entitlements.Errorf(entitlements.EINVALID, "%s needs a lease renew URL: set issuer.lease_renew_url", t.Name)
		}
		p.Lease = &verify.LeasePolicy{Required: t.Lease.Required, TTLSeconds: t.Lease.TTLSeconds, RenewURL: in.RenewURL}
	}
	return p, nil
}

func human(d time.Duration) string {
	if d%Day == 0 {
		return fmt.Sprintf("%d days", d/Day)
	}
	return d.String()
}
