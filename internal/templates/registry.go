package templates

import (
	"slices"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

// Products.
const (
	ProductRouter  = "genai-smart-router"
	ProductCoreSDK = "coresdk"
)

// routerFeatures are the GenAI Smart Router capabilities a license can grant.
var routerFeatures = []string{
	"admin_reports", "audit_export", "dynamic_routing", "external_policy_routing",
	"model_group_contracts", "pii_filtering", "private_upstreams", "retention_rollups",
	"routing", "typescript_policy_routing", "usage_export", "usage_reporting",
}

// coreSDKFeatures are the CoreSDK feature gates a plan can grant.
var coreSDKFeatures = []string{"audit_trails", "feature_flags", "hsm", "saml", "scim"}

// all lists every template version ever defined. Versions are append-only: to change
// a template, add its next version here and leave the old one as it is.
var all = []*Template{
	{
		Name: "eval-72h", Version: 1, Product: ProductRouter, Summary: "72-hour evaluation with a small volume ceiling",
		Term: 72 * time.Hour, FixedTerm: true,
		Features:    []string{"routing", "usage_reporting"},
		Limits:      map[string]int64{"token_budget": 1_000_000, "max_instances": 1, "max_concurrency": 4},
		Lease:       &LeaseRule{Required: true, TTLSeconds: 3600},
		SelfService: true,
	},
	{
		Name: "pilot-30d", Version: 1, Product: ProductRouter, Summary: "30-day paid pilot with usage reporting and a rolling usage window",
		Term: 30 * Day, FixedTerm: true,
		Features:          []string{"admin_reports", "dynamic_routing", "routing", "usage_reporting"},
		Limits:            map[string]int64{"token_budget": 25_000_000, "usage_window_seconds": 30 * 86400, "max_instances": 2, "max_concurrency": 16},
		Grace:             24 * time.Hour,
		AllowedFeatures:   routerFeatures,
		OverridableLimits: []string{"max_instances", "max_concurrency", "token_budget"},
		Lease:             &LeaseRule{Required: true, TTLSeconds: 6 * 3600},
		SelfService:       true,
	},
	{
		Name: "enterprise-annual", Version: 1, Product: ProductRouter, Summary: "annual self-hosted contract",
		Term: 365 * Day, MaxTerm: 3 * 366 * Day,
		Features:          []string{"admin_reports", "audit_export", "dynamic_routing", "routing", "usage_export", "usage_reporting"},
		Limits:            map[string]int64{"max_instances": 10, "max_concurrency": 256},
		Grace:             24 * time.Hour,
		MaxGrace:          7 * Day,
		AllowedFeatures:   routerFeatures,
		OverridableLimits: []string{"max_instances", "max_concurrency", "token_budget", "usage_window_seconds", "seats"},
	},
	{
		Name: "credit-pack-5m", Version: 1, Product: ProductRouter,
		Summary: "prepaid top-up: replaces a license with a 5M-token license-wide budget, other terms kept",
		Term:    365 * Day, MaxTerm: 3 * 366 * Day, Inherit: true, SelfService: true,
		Limits: map[string]int64{"token_budget": 5_000_000},
	},
	{
		Name: "credit-pack-25m", Version: 1, Product: ProductRouter,
		Summary: "prepaid top-up: replaces a license with a 25M-token license-wide budget, other terms kept",
		Term:    365 * Day, MaxTerm: 3 * 366 * Day, Inherit: true, SelfService: true,
		Limits: map[string]int64{"token_budget": 25_000_000},
	},
	{
		Name: "marketplace-seat", Version: 1, Product: ProductRouter, Summary: "marketplace / private-offer term and seat scope",
		Term: 365 * Day, MaxTerm: 3 * 366 * Day,
		Features:          []string{"admin_reports", "routing", "usage_reporting"},
		Limits:            map[string]int64{"seats": 10, "max_instances": 5},
		Grace:             24 * time.Hour,
		AllowedFeatures:   routerFeatures,
		OverridableLimits: []string{"seats", "max_instances", "token_budget", "max_concurrency"},
	},
	// Version 2 of the credit packs: the budget may be set by the entitlement, so a
	// pack that lands on a license another purchase issued meanwhile carries both
	// budgets (docs/purchase.md, "Credit packs add up").
	{
		Name: "credit-pack-5m", Version: 2, Product: ProductRouter,
		Summary: "prepaid top-up: replaces a license with a 5M-token license-wide budget, other terms kept",
		Term:    365 * Day, MaxTerm: 3 * 366 * Day, Inherit: true, SelfService: true,
		Limits:            map[string]int64{"token_budget": 5_000_000},
		OverridableLimits: []string{"token_budget"},
	},
	{
		Name: "credit-pack-25m", Version: 2, Product: ProductRouter,
		Summary: "prepaid top-up: replaces a license with a 25M-token license-wide budget, other terms kept",
		Term:    365 * Day, MaxTerm: 3 * 366 * Day, Inherit: true, SelfService: true,
		Limits:            map[string]int64{"token_budget": 25_000_000},
		OverridableLimits: []string{"token_budget"},
	},
	// CoreSDK plans (the seed's plan tiers): JWS tokens, no grace (the form has none).
	{
		Name: "free", Version: 1, Product: ProductCoreSDK, Summary: "Free plan: 3 tenants, 500 rps",
		Term: 365 * Day, MaxTerm: 366 * Day,
		Features: []string{"feature_flags"},
		Limits:   map[string]int64{"max_tenants": 3, "max_rps": 500},
	},
	{
		Name: "team", Version: 1, Product: ProductCoreSDK, Summary: "Team plan: 50 tenants, 5,000 rps",
		Term: 365 * Day, MaxTerm: 3 * 366 * Day,
		Features:        []string{"audit_trails", "feature_flags", "saml", "scim"},
		Limits:          map[string]int64{"max_tenants": 50, "max_rps": 5000},
		AllowedFeatures: coreSDKFeatures,
	},
	{
		Name: "enterprise", Version: 1, Product: ProductCoreSDK, Summary: "Enterprise plan: unlimited tenants, custom rps, HSM support",
		Term: 365 * Day, MaxTerm: 3 * 366 * Day,
		Features:          []string{"audit_trails", "feature_flags", "hsm", "saml", "scim"},
		Limits:            map[string]int64{},
		AllowedFeatures:   coreSDKFeatures,
		OverridableLimits: []string{"max_rps", "max_tenants"},
		RequiredLimits:    []string{"max_rps"},
	},
}

// All returns every template version ever defined, oldest first.
func All() []*Template { return slices.Clone(all) }

// Get returns one template version.
func Get(name string, version int) (*Template, error) {
	for _, t := range all {
		if t.Name == name && t.Version == version {
			return t, nil
		}
	}
	return nil, entitlements.NotFound("template", name)
}

// Latest returns the newest version of a template.
func Latest(name string) (*Template, error) {
	var best *Template
	for _, t := range all {
		if t.Name == name && (best == nil || t.Version > best.Version) {
			best = t
		}
	}
	if best == nil {
		return nil, entitlements.Errorf(entitlements.EINVALID, "unknown template %q", name)
	}
	return best, nil
}

// List returns the newest version of every template, by product then name.
func List() []*Template {
	var out []*Template
	for _, t := range all {
		if l, _ := Latest(t.Name); l == t {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *Template) int {
		if a.Product != b.Product {
			return compare(a.Product, b.Product)
		}
		return compare(a.Name, b.Name)
	})
	return out
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
