// Package templates turns an approved entitlement into a license payload. A template
// fixes a SKU's term, features, limits, grace and lease policy, and what staff may
// override. Templates are versioned: a change is a new version, and every license
// records the name and version it came from, so nothing already issued changes. The
// database records each version's fingerprint the first time it issues, and refuses
// a version whose definition was later edited in place.
package templates

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/go-json-experiment/json"

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
	Required   bool  `json:"required"`
	TTLSeconds int64 `json:"ttl_seconds"`
}

// Template is one version of a SKU.
type Template struct {
	Name    string
	Version int
	Product string
	Summary string
	// Term is the default length of the license. With FixedTerm a new entitlement's
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
	// OverridableLimits names the limits an override may set; RequiredLimits must be
	// set by one (CoreSDK enterprise: the contract's custom rps).
	OverridableLimits []string
	RequiredLimits    []string
	// Inherit marks credit packs: a top-up replaces an active license, keeping its
	// features, limits, grace, lease policy and instance binding, and sets the pack's
	// limits (the new license-wide token budget) over them.
	Inherit bool
	// SelfService marks templates the customer portal may sell.
	SelfService bool
}

// Key is "name@version".
func (t *Template) Key() string { return fmt.Sprintf("%s@%d", t.Name, t.Version) }

// Form is the license form the template produces.
func (t *Template) Form() string { return FormOf(t.Product) }

// Definition is everything that decides what the template renders, as JSON: what the
// database fingerprints.
func (t *Template) Definition() []byte {
	b, err := json.Marshal(map[string]any{
		"name": t.Name, "version": t.Version, "product": t.Product,
		"term_seconds": int64(t.Term / time.Second), "fixed_term": t.FixedTerm, "max_term_seconds": int64(t.MaxTerm / time.Second),
		"features": t.Features, "limits": t.Limits, "grace_seconds": int64(t.Grace / time.Second),
		"max_grace_seconds": int64(t.MaxGrace / time.Second), "lease": t.Lease, "allowed_features": t.AllowedFeatures,
		"overridable_limits": t.OverridableLimits, "required_limits": t.RequiredLimits, "inherit": t.Inherit,
	}, json.Deterministic(true))
	if err != nil {
		panic(err) // only plain values: can't fail
	}
	return b
}

// Fingerprint is the SHA-256 of Definition.
func (t *Template) Fingerprint() []byte {
	h := sha256.Sum256(t.Definition())
	return h[:]
}

// CheckEntitlement validates an entitlement's term and overrides against the template.
func (t *Template) CheckEntitlement(e *entitlements.Entitlement) error {
	f := map[string]string{}
	if e.Product != t.Product {
		f["template"] = fmt.Sprintf("template %s is for %s, not %s", t.Name, t.Product, e.Product)
	}
	if t.Inherit && e.Kind != entitlements.KindTopUp && e.Kind != entitlements.KindReplacement {
		f["template"] = t.Name + " is a top-up: it replaces an active license (issuer license top-up)"
	}
	if !t.Inherit && e.Kind == entitlements.KindTopUp {
		f["template"] = t.Name + " is not a credit pack"
	}
	term := e.EndsAt.Sub(e.StartsAt)
	switch {
	// A renewal of a fixed-term template keeps its term too; successors that carry
	// an existing license's end date (replacement, top-up) may run shorter.
	case t.FixedTerm && term != t.Term && (e.Kind == entitlements.KindNew || e.Kind == entitlements.KindRenewal):
		f["ends_at"] = fmt.Sprintf("%s licenses run exactly %s", t.Name, human(t.Term))
	case t.FixedTerm && term > t.Term:
		f["ends_at"] = fmt.Sprintf("%s licenses run at most %s", t.Name, human(t.Term))
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
		} else if v := o.Limits[name]; v < 0 || v > entitlements.MaxLimitValue {
			f["limits"] = fmt.Sprintf("limit %q must be 0 to %d", name, entitlements.MaxLimitValue)
		}
	}
	for _, name := range t.RequiredLimits {
		if _, ok := o.Limits[name]; !ok {
			f["limits"] = fmt.Sprintf("%s needs the contract's %s: --limit %s=N", t.Name, name, name)
		}
	}
	if g := o.GracePeriodSeconds; g != nil {
		if t.MaxGrace == 0 {
			f["grace_period_seconds"] = t.Name + " does not allow a grace override"
		} else if *g < 0 || *g > int64(t.MaxGrace/time.Second) { // in integers: a Duration product would wrap
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
	// RenewURL is the lease API's URL for licenses with a lease policy.
	RenewURL string
	// Base is the license a top-up replaces; its terms carry over.
	Base *entitlements.Terms
}

// Terms computes what the license grants: the template's defaults, or the base
// license's terms for a credit pack, with the entitlement's overrides over them.
func (t *Template) Terms(e *entitlements.Entitlement, base *entitlements.Terms) (*entitlements.Terms, error) {
	out := &entitlements.Terms{Features: slices.Clone(t.Features), Limits: maps.Clone(t.Limits),
		GracePeriodSeconds: int64(t.Grace / time.Second), InstanceFingerprint: e.InstanceFingerprint}
	if t.Lease != nil && t.Lease.Required {
		out.LeaseTTLSeconds = t.Lease.TTLSeconds
	}
	if t.Inherit {
		if base == nil {
			return nil, entitlements.Errorf(entitlements.EINVALID, "%s tops up an existing license: none given", t.Name)
		}
		out.Features, out.Limits = slices.Clone(base.Features), maps.Clone(base.Limits)
		out.GracePeriodSeconds, out.LeaseTTLSeconds = base.GracePeriodSeconds, base.LeaseTTLSeconds
		if out.Limits == nil {
			out.Limits = map[string]int64{}
		}
		maps.Copy(out.Limits, t.Limits) // the pack's budget replaces the old one
	}
	if out.Limits == nil {
		out.Limits = map[string]int64{}
	}
	if len(e.Overrides.Features) > 0 {
		out.Features = slices.Clone(e.Overrides.Features)
	}
	maps.Copy(out.Limits, e.Overrides.Limits)
	if e.Overrides.GracePeriodSeconds != nil {
		out.GracePeriodSeconds = *e.Overrides.GracePeriodSeconds
	}
	slices.Sort(out.Features)
	out.Features = slices.Compact(out.Features)
	if out.Features == nil {
		out.Features = []string{}
	}
	return out, nil
}

// Render produces the license payload for an envelope-form product.
func (t *Template) Render(e *entitlements.Entitlement, in Input) (*verify.LicensePayload, *entitlements.Terms, error) {
	if t.Form() != FormEnvelope {
		return nil, nil, fmt.Errorf("templates: %s renders a %s license, not an envelope", t.Name, t.Form())
	}
	if err := t.CheckEntitlement(e); err != nil {
		return nil, nil, err
	}
	terms, err := t.Terms(e, in.Base)
	if err != nil {
		return nil, nil, err
	}
	p := &verify.LicensePayload{
		Schema: 1, LicenseID: in.LicenseID, Product: t.Product, Issuer: in.Issuer,
		CustomerID: e.CustomerID, CustomerName: in.CustomerName, SKU: t.Name,
		TemplateVersion: int64(t.Version), IssuedAt: verify.FormatTime(in.IssuedAt),
		NotBefore: verify.FormatTime(e.StartsAt), ExpiresAt: verify.FormatTime(e.EndsAt),
		Features: terms.Features, Limits: terms.Limits, GracePeriodSeconds: terms.GracePeriodSeconds,
		InstanceFingerprint: terms.InstanceFingerprint, Supersedes: e.Supersedes,
	}
	if terms.LeaseTTLSeconds > 0 {
		if in.RenewURL == "" {
			return nil, nil, entitlements.Errorf(entitlements.EINVALID, "%s needs a lease renew URL: set issuer.lease_renew_url (https)", t.Name)
		}
		p.Lease = &verify.LeasePolicy{Required: true, TTLSeconds: terms.LeaseTTLSeconds, RenewURL: in.RenewURL}
	}
	return p, terms, nil
}

// RenderJWS produces the claims of a CoreSDK license token (formats.md section 7):
// sub is the customer, jti the license ID, exp/nbf the term, the plan the template.
func (t *Template) RenderJWS(e *entitlements.Entitlement, in Input) (*verify.JWSClaims, *entitlements.Terms, error) {
	if t.Form() != FormJWS {
		return nil, nil, fmt.Errorf("templates: %s renders a %s license, not a JWS", t.Name, t.Form())
	}
	if err := t.CheckEntitlement(e); err != nil {
		return nil, nil, err
	}
	terms, err := t.Terms(e, in.Base)
	if err != nil {
		return nil, nil, err
	}
	c := &verify.JWSClaims{Iss: in.Issuer, Sub: e.CustomerID, Iat: in.IssuedAt.Unix(), Exp: e.EndsAt.Unix(),
		Nbf: e.StartsAt.Unix(), Jti: in.LicenseID, Plan: t.Name,
		Entitlements: verify.JWSEntitlements{Features: terms.Features}}
	if v, ok := terms.Limits["max_tenants"]; ok {
		c.Entitlements.MaxTenants = &v
	}
	if v, ok := terms.Limits["max_rps"]; ok {
		c.Entitlements.MaxRPS = &v
	}
	return c, terms, nil
}

func human(d time.Duration) string {
	if d%Day == 0 {
		return fmt.Sprintf("%d days", d/Day)
	}
	return d.String()
}
