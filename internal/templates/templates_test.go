package templates

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ent(product, name string, term time.Duration, o entitlements.Overrides) *entitlements.Entitlement {
	return &entitlements.Entitlement{CustomerID: "cus_01HZY3QK8Y0000000000000002", Product: product, TemplateName: name,
		Kind: entitlements.KindNew, StartsAt: t0, EndsAt: t0.Add(term), Overrides: o, InstanceFingerprint: "node-1"}
}

func in() Input {
	return Input{LicenseID: "lic_01HZY3QK8Y0000000000000001", Issuer: "metrum", CustomerName: "Acme", IssuedAt: t0,
		RenewURL: "https://licensing.metrum.test/v1/leases"}
}

func i64(v int64) *int64 { return &v }

// TestRouterTemplates renders every router SKU with its defaults and checks the
// payload carries exactly the template's terms.
func TestRouterTemplates(t *testing.T) {
	cases := []struct {
		name     string
		features []string
		limits   map[string]int64
		grace    int64
		leaseTTL int64 // 0: no lease
	}{
		{"eval-72h", []string{"routing", "usage_reporting"}, map[string]int64{"token_budget": 1_000_000, "max_instances": 1, "max_concurrency": 4}, 0, 3600},
		{"pilot-30d", []string{"admin_reports", "dynamic_routing", "routing", "usage_reporting"},
			map[string]int64{"token_budget": 25_000_000, "usage_window_seconds": 2_592_000, "max_instances": 2, "max_concurrency": 16}, 86400, 21600},
		{"enterprise-annual", []string{"admin_reports", "audit_export", "dynamic_routing", "routing", "usage_export", "usage_reporting"},
			map[string]int64{"max_instances": 10, "max_concurrency": 256}, 86400, 0},
		{"marketplace-seat", []string{"admin_reports", "routing", "usage_reporting"}, map[string]int64{"seats": 10, "max_instances": 5}, 86400, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tm, err := Latest(c.name)
			if err != nil {
				t.Fatal(err)
			}
			p, terms, err := tm.Render(ent(ProductRouter, c.name, tm.Term, entitlements.Overrides{}), in())
			if err != nil {
				t.Fatal(err)
			}
			if p.Schema != 1 || p.SKU != c.name || p.TemplateVersion != int64(tm.Version) || p.Product != ProductRouter || p.Issuer != "metrum" {
				t.Fatalf("identity fields: %+v", p)
			}
			if p.NotBefore != "2026-03-01T12:00:00Z" || p.ExpiresAt != verify.FormatTime(t0.Add(tm.Term)) || p.IssuedAt != "2026-03-01T12:00:00Z" {
				t.Fatalf("times: %s %s %s", p.IssuedAt, p.NotBefore, p.ExpiresAt)
			}
			if !slices.Equal(p.Features, c.features) || !maps.Equal(p.Limits, c.limits) || p.GracePeriodSeconds != c.grace {
				t.Fatalf("terms: features %v limits %v grace %d", p.Features, p.Limits, p.GracePeriodSeconds)
			}
			if p.InstanceFingerprint != "node-1" || terms.InstanceFingerprint != "node-1" {
				t.Fatalf("instance binding lost: %q", p.InstanceFingerprint)
			}
			switch {
			case c.leaseTTL == 0 && p.Lease != nil:
				t.Fatalf("unexpected lease policy %+v", p.Lease)
			case c.leaseTTL > 0 && (p.Lease == nil || !p.Lease.Required || p.Lease.TTLSeconds != c.leaseTTL || p.Lease.RenewURL != in().RenewURL):
				t.Fatalf("lease policy %+v", p.Lease)
			}
		})
	}
}

// TestOverrides: what a template lets staff change, and what it refuses.
func TestOverrides(t *testing.T) {
	cases := []struct {
		tmpl    string
		product string
		term    time.Duration
		o       entitlements.Overrides
		want    string // "" = accepted; else a fragment of the field message
		check   func(t *testing.T, limits map[string]int64, features []string, grace int64)
	}{
		{"enterprise-annual", ProductRouter, 365 * Day, entitlements.Overrides{Limits: map[string]int64{"max_instances": 40}}, "",
			func(t *testing.T, l map[string]int64, _ []string, _ int64) {
				if l["max_instances"] != 40 || l["max_concurrency"] != 256 {
					t.Fatalf("limits %v", l)
				}
			}},
		{"enterprise-annual", ProductRouter, 365 * Day, entitlements.Overrides{Features: []string{"routing", "pii_filtering", "routing"}}, "",
			func(t *testing.T, _ map[string]int64, f []string, _ int64) {
				if !slices.Equal(f, []string{"pii_filtering", "routing"}) {
					t.Fatalf("features not sorted and unique: %v", f)
				}
			}},
		{"enterprise-annual", ProductRouter, 365 * Day, entitlements.Overrides{GracePeriodSeconds: i64(3 * 86400)}, "",
			func(t *testing.T, _ map[string]int64, _ []string, g int64) {
				if g != 3*86400 {
					t.Fatalf("grace %d", g)
				}
			}},
		{"enterprise-annual", ProductRouter, 365 * Day, entitlements.Overrides{GracePeriodSeconds: i64(8 * 86400)}, "grace must be 0 to", nil},
		{"enterprise-annual", ProductRouter, 365 * Day, entitlements.Overrides{Limits: map[string]int64{"max_tenants": 3}}, "can't be overridden", nil},
		{"enterprise-annual", ProductRouter, 365 * Day, entitlements.Overrides{Features: []string{"teleportation"}}, "not available", nil},
		{"enterprise-annual", ProductRouter, 4 * 366 * Day, entitlements.Overrides{}, "at most", nil},
		{"eval-72h", ProductRouter, 72 * time.Hour, entitlements.Overrides{Limits: map[string]int64{"max_instances": 9}}, "can't be overridden", nil},
		{"eval-72h", ProductRouter, 72 * time.Hour, entitlements.Overrides{Features: []string{"routing"}}, "does not allow feature overrides", nil},
		{"eval-72h", ProductRouter, 96 * time.Hour, entitlements.Overrides{}, "run exactly", nil},
		{"eval-72h", ProductRouter, 72 * time.Hour, entitlements.Overrides{GracePeriodSeconds: i64(60)}, "does not allow a grace override", nil},
		{"pilot-30d", ProductRouter, 31 * Day, entitlements.Overrides{}, "run exactly", nil},
		{"enterprise-annual", ProductCoreSDK, 365 * Day, entitlements.Overrides{}, "is for genai-smart-router", nil},
	}
	for _, c := range cases {
		name := c.tmpl + "/" + c.want
		t.Run(name, func(t *testing.T) {
			tm, err := Latest(c.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			p, _, err := tm.Render(ent(c.product, c.tmpl, c.term, c.o), in())
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				c.check(t, p.Limits, p.Features, p.GracePeriodSeconds)
				return
			}
			var de *entitlements.Error
			if err == nil || !asErr(err, &de) || de.Code != entitlements.EINVALID || !anyContains(de.Fields, c.want) {
				t.Fatalf("want a field error containing %q, got %v", c.want, err)
			}
		})
	}
}

// TestCoreSDKPlans: the seed's plan tiers as JWS claims.
func TestCoreSDKPlans(t *testing.T) {
	cases := []struct {
		plan             string
		o                entitlements.Overrides
		tenants, rps     *int64
		features         []string
		wantErrFragement string
	}{
		{"free", entitlements.Overrides{}, i64(3), i64(500), []string{"feature_flags"}, ""},
		{"team", entitlements.Overrides{}, i64(50), i64(5000), []string{"audit_trails", "feature_flags", "saml", "scim"}, ""},
		{"enterprise", entitlements.Overrides{Limits: map[string]int64{"max_rps": 20000}}, nil, i64(20000),
			[]string{"audit_trails", "feature_flags", "hsm", "saml", "scim"}, ""},
		{"enterprise", entitlements.Overrides{}, nil, nil, nil, "max_rps"},
		{"team", entitlements.Overrides{Limits: map[string]int64{"max_tenants": 500}}, nil, nil, nil, "can't be overridden"},
		{"free", entitlements.Overrides{Features: []string{"saml"}}, nil, nil, nil, "does not allow feature overrides"},
	}
	for _, c := range cases {
		t.Run(c.plan+"/"+c.wantErrFragement, func(t *testing.T) {
			tm, _ := Latest(c.plan)
			claims, _, err := tm.RenderJWS(ent(ProductCoreSDK, c.plan, 365*Day, c.o), Input{LicenseID: in().LicenseID,
				Issuer: "https://licensing.coresdk.io", IssuedAt: t0})
			if c.wantErrFragement != "" {
				var de *entitlements.Error
				if !asErr(err, &de) || !anyContains(de.Fields, c.wantErrFragement) {
					t.Fatalf("want %q, got %v", c.wantErrFragement, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if claims.Plan != c.plan || claims.Sub != "cus_01HZY3QK8Y0000000000000002" || claims.Jti != in().LicenseID ||
				claims.Iss != "https://licensing.coresdk.io" || claims.Exp != t0.Add(365*Day).Unix() || claims.Nbf != t0.Unix() {
				t.Fatalf("claims %+v", claims)
			}
			if !eqPtr(claims.Entitlements.MaxTenants, c.tenants) || !eqPtr(claims.Entitlements.MaxRPS, c.rps) ||
				!slices.Equal(claims.Entitlements.Features, c.features) {
				t.Fatalf("entitlements %+v", claims.Entitlements)
			}
		})
	}
	if _, _, err := mustLatest(t, "team").Render(ent(ProductCoreSDK, "team", 365*Day, entitlements.Overrides{}), in()); err == nil {
		t.Fatal("a CoreSDK plan rendered an envelope")
	}
}

// TestCreditPackInheritsTheLicenseItTopsUp: features, other limits, grace, lease and
// binding come from the base license; the token budget from the pack.
func TestCreditPackInheritsTheLicenseItTopsUp(t *testing.T) {
	tm := mustLatest(t, "credit-pack-5m")
	e := ent(ProductRouter, tm.Name, 100*Day, entitlements.Overrides{})
	if _, _, err := tm.Render(e, in()); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Fatalf("a credit pack rendered as a new license: %v", err)
	}
	e.Kind = entitlements.KindTopUp
	e.Supersedes = "lic_01HZY3QK8Y0000000000000009"
	base := &entitlements.Terms{Features: []string{"pii_filtering", "routing"}, Limits: map[string]int64{"max_instances": 8, "token_budget": 1},
		GracePeriodSeconds: 7200, LeaseTTLSeconds: 600, InstanceFingerprint: "node-1"}
	input := in()
	input.Base = base
	p, terms, err := tm.Render(e, input)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Features, base.Features) || p.Limits["max_instances"] != 8 || p.Limits["token_budget"] != 5_000_000 ||
		p.GracePeriodSeconds != 7200 || p.Lease == nil || p.Lease.TTLSeconds != 600 || p.Supersedes != e.Supersedes || terms.LeaseTTLSeconds != 600 {
		t.Fatalf("top-up payload %+v", p)
	}
	if base.Limits["token_budget"] != 1 {
		t.Fatal("rendering changed the base license's terms")
	}
}

// TestVersionsAreUniqueAndFingerprintsStable: the registry has one definition per
// name@version, and a fingerprint changes with any term.
func TestVersionsAreUniqueAndFingerprintsStable(t *testing.T) {
	seen := map[string]bool{}
	for _, tm := range All() {
		if seen[tm.Key()] {
			t.Fatalf("%s defined twice", tm.Key())
		}
		seen[tm.Key()] = true
		if FormOf(tm.Product) == "" {
			t.Fatalf("%s: unknown product %s", tm.Key(), tm.Product)
		}
	}
	a := *mustLatest(t, "enterprise-annual")
	b := a
	b.Limits = maps.Clone(a.Limits)
	b.Limits["max_instances"]++
	if string(a.Fingerprint()) == string(b.Fingerprint()) {
		t.Fatal("changing a limit did not change the fingerprint")
	}
	if string(a.Fingerprint()) != string(mustLatest(t, "enterprise-annual").Fingerprint()) {
		t.Fatal("fingerprint not deterministic")
	}
}

func mustLatest(t *testing.T, name string) *Template {
	t.Helper()
	tm, err := Latest(name)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func eqPtr(a, b *int64) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }

func anyContains(m map[string]string, frag string) bool {
	for _, v := range m {
		if strings.Contains(v, frag) {
			return true
		}
	}
	return false
}

func asErr(err error, target **entitlements.Error) bool {
	e, ok := err.(*entitlements.Error)
	if ok {
		*target = e
	}
	return ok
}
