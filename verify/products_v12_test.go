package verify_test

import (
	"slices"
	"testing"

	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

// TestKeyProducts: formats.md v1.2 binds every key to products, and a document is
// trusted only when its key's products include the document's product.
func TestKeyProducts(t *testing.T) {
	leased := func(f *fixture) verify.Options {
		o := f.opts(f.license(with(payload(), "lease", map[string]any{"required": true, "ttl_seconds": 3600, "renew_url": "https://lic.example/v1/leases"})))
		o.InstanceFingerprint = "h1"
		return o
	}
	leaseBy := func(f *fixture, k *signing.FileKey) string {
		return f.write("lease.json", f.sign(k, verify.FormatLease, marshal(f.t, map[string]any{
			"schema": 1, "lease_id": leaseID1, "license_id": licID, "instance_fingerprint": "h1",
			"issued_at": "2026-06-01T11:00:00Z", "expires_at": "2026-06-01T13:00:00Z"})))
	}
	run(t, []tc{
		{"router license signed by a CoreSDK-only license key", func(f *fixture) verify.Options {
			return f.opts(f.write("l.json", f.sign(f.edJWS, verify.FormatLicense, marshal(f.t, payload()))))
		}, B, verify.ReasonInvalid},
		{"router license signed by a key for both products", func(f *fixture) verify.Options {
			return f.opts(f.write("l.json", f.sign(f.es, verify.FormatLicense, marshal(f.t, payload()))))
		}, V, ""},
		{"license of a product its key does not name", func(f *fixture) verify.Options {
			return f.opts(f.license(with(payload(), "product", "other-product")))
		}, B, verify.ReasonInvalid},
		{"license signed by a key without products", func(f *fixture) verify.Options {
			k := f.trustedFor(nil, verify.PurposeLicense)
			return f.opts(f.write("l.json", f.sign(k, verify.FormatLicense, marshal(f.t, payload()))))
		}, B, verify.ReasonInvalid},
		{"JWS signed by a router-only key", func(f *fixture) verify.Options {
			o := f.opts(f.jws(f.trustedAs(verify.PurposeLicense), claims()))
			o.Product = coresdk
			return o
		}, B, verify.ReasonInvalid},
		{"JWS signed by a key without products", func(f *fixture) verify.Options {
			return f.opts(f.jws(f.trustedFor(nil, verify.PurposeLicense), claims()))
		}, B, verify.ReasonInvalid},
		{"lease signed by the router's lease key", func(f *fixture) verify.Options {
			o := leased(f)
			o.LeasePath = leaseBy(f, f.lease)
			return o
		}, V, ""},
		{"lease signed by another product's lease key", func(f *fixture) verify.Options {
			o := leased(f)
			o.LeasePath = leaseBy(f, f.trustedFor([]string{coresdk}, verify.PurposeLease))
			return o
		}, B, verify.ReasonLeaseInvalid},
		{"lease signed by a lease key without products", func(f *fixture) verify.Options {
			o := leased(f)
			o.LeasePath = leaseBy(f, f.trustedFor(nil, verify.PurposeLease))
			return o
		}, B, verify.ReasonLeaseInvalid},
	})
}

// TestBundleSchemaAndProduct: a bundle is authentic (step 7b) only as schema 2 with a
// product among its key's products.
func TestBundleSchemaAndProduct(t *testing.T) {
	f := newFixture(t)
	for name, c := range map[string]struct {
		file []byte
		ok   bool
	}{
		"schema 2, router, router key":        {f.bundle(1, future), true},
		"schema 2, coresdk, coresdk key":      {f.bundleBy(f.revSDK, coresdk, 1, future), true},
		"schema 1":                            {f.sign(f.rev, verify.FormatRevocation, marshal(t, with(bundlePayload(router, 1, future), "schema", 1, "product", nil))), false},
		"schema 1 with a product":             {f.sign(f.rev, verify.FormatRevocation, marshal(t, with(bundlePayload(router, 1, future), "schema", 1))), false},
		"schema 3":                            {f.sign(f.rev, verify.FormatRevocation, marshal(t, with(bundlePayload(router, 1, future), "schema", 3))), false},
		"no product":                          {f.sign(f.rev, verify.FormatRevocation, marshal(t, with(bundlePayload(router, 1, future), "product", nil))), false},
		"empty product":                       {f.bundleBy(f.rev, "", 1, future), false},
		"coresdk bundle signed by router key": {f.bundleBy(f.rev, coresdk, 1, future), false},
		"router bundle signed by coresdk key": {f.bundleBy(f.revSDK, router, 1, future), false},
		"key without products":                {f.bundleBy(f.trustedFor(nil, verify.PurposeRevocation), router, 1, future), false},
		"case-variant product member": {f.sign(f.rev, verify.FormatRevocation, marshal(t, with(bundlePayload(router, 1, future),
			"product", nil, "Product", router))), false},
	} {
		b, err := verify.ParseBundleFile(c.file, f.ks)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", name, err, c.ok)
		}
		if err == nil && b.Product == "" {
			t.Errorf("%s: no product", name)
		}
	}
}

// TestKeySetWithoutProductsLoads: a key set exported before v1.2 is not refused, but
// its keys trust nothing.
func TestKeySetWithoutProductsLoads(t *testing.T) {
	k := mustKey(t, verify.AlgEdDSA, verify.PurposeLicense)
	j, _ := signing.JWKOf(k.Public(), k.Algorithm(), k.Purposes())
	set, _ := signing.KeySetJSON([]signing.PublicJWK{j})
	ks, err := verify.ParseKeySet(set)
	if err != nil || len(ks.Dropped) != 0 || ks.Lookup(j.Kid) == nil {
		t.Fatalf("key set without products: %v %v", err, ks.Dropped)
	}
	if got := ks.NoProducts(); !slices.Equal(got, []string{j.Kid}) {
		t.Fatalf("NoProducts %v", got)
	}
	if key := ks.Lookup(j.Kid); key.Trusts(router) || key.Trusts("") {
		t.Fatal("a key without products trusts a product")
	}
	env, _ := signing.SignEnvelope(k, verify.FormatLicense, marshal(t, payload()))
	if _, err := verify.ParseLicenseFile(env, ks); err == nil {
		t.Fatal("a license signed by a key without products verified")
	}
	// Malformed products refuse the key, as malformed purposes do.
	for name, products := range map[string][]string{"empty name": {""}, "listed twice": {router, router}} {
		j, _ := signing.JWKOf(k.Public(), k.Algorithm(), k.Purposes(), products...)
		set, _ := signing.KeySetJSON([]signing.PublicJWK{j})
		if ks, err := verify.ParseKeySet(set); err != nil || ks.Lookup(j.Kid) != nil || len(ks.Dropped) != 1 {
			t.Errorf("%s: key trusted (%v)", name, err)
		}
	}
}
