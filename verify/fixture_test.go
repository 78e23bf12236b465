package verify_test

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

// fixture holds keys generated at test time and writes documents signed with them.
type fixture struct {
	t                                    testing.TB
	dir                                  string
	lic, rev, lease, es, rsa, edJWS, bad *signing.FileKey
	revSDK                               *signing.FileKey // CoreSDK's revocation key
	ks                                   *verify.KeySet
	keysetJSON                           []byte
}

// The two products of the fixtures: every key is bound to one or both (formats.md v1.2).
const (
	router  = "genai-smart-router"
	coresdk = verify.ProductCoreSDK
)

var (
	t0       = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	licID    = "lic_01HZY3QK8Y0000000000000001"
	otherID  = "lic_01HZY3QK8Y0000000000000002"
	custID   = "cus_01HZY3QK8Y0000000000000003"
	leaseID1 = "lea_01HZY3QK8Y0000000000000004"
)

func mustKey(t testing.TB, alg string, p ...verify.Purpose) *signing.FileKey {
	t.Helper()
	k, err := signing.GenerateKey(alg, p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var rsaKeyCache *signing.FileKey // RSA generation is slow; one per test binary

func newFixture(t testing.TB) *fixture {
	t.Helper()
	if rsaKeyCache == nil {
		rsaKeyCache = mustKey(t, verify.AlgRS256, verify.PurposeLicense)
	}
	f := &fixture{t: t, dir: t.TempDir(),
		lic:    mustKey(t, verify.AlgEdDSA, verify.PurposeLicense),
		rev:    mustKey(t, verify.AlgEdDSA, verify.PurposeRevocation),
		lease:  mustKey(t, verify.AlgEdDSA, verify.PurposeLease),
		es:     mustKey(t, verify.AlgES256, verify.PurposeLicense, verify.PurposeRevocation),
		rsa:    rsaKeyCache,
		edJWS:  mustKey(t, verify.AlgEdDSA, verify.PurposeLicense),
		bad:    mustKey(t, verify.AlgEdDSA, verify.PurposeLicense), // not in the key set
		revSDK: mustKey(t, verify.AlgEdDSA, verify.PurposeRevocation),
	}
	var jwks []signing.PublicJWK
	for _, kp := range []struct {
		k        *signing.FileKey
		products []string
	}{{f.lic, []string{router}}, {f.rev, []string{router}}, {f.lease, []string{router}},
		{f.es, []string{router, coresdk}}, {f.rsa, []string{coresdk}}, {f.edJWS, []string{coresdk}},
		{f.revSDK, []string{coresdk}}} {
		j, err := signing.JWKOf(kp.k.Public(), kp.k.Algorithm(), kp.k.Purposes(), kp.products...)
		if err != nil {
			t.Fatal(err)
		}
		jwks = append(jwks, j)
	}
	var err error
	if f.keysetJSON, err = signing.KeySetJSON(jwks); err != nil {
		t.Fatal(err)
	}
	if f.ks, err = verify.ParseKeySet(f.keysetJSON); err != nil || len(f.ks.Dropped) > 0 {
		t.Fatalf("key set: %v %v", err, f.ks.Dropped)
	}
	return f
}

// payload is a valid license payload as a map, for tests to bend.
func payload() map[string]any {
	return map[string]any{
		"schema": 1, "license_id": licID, "product": "genai-smart-router", "issuer": "metrum",
		"customer_id": custID, "customer_name": "Acme", "sku": "enterprise-annual", "template_version": 1,
		"issued_at": "2026-01-01T00:00:00Z", "not_before": "2026-01-01T00:00:00Z", "expires_at": "2027-01-01T00:00:00Z",
		"features": []string{"admin_reports", "routing"}, "limits": map[string]any{"max_instances": 5, "token_budget": 1000},
		"grace_period_seconds": 86400,
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	c := maps.Clone(m)
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v, json.Deterministic(true))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) sign(k *signing.FileKey, format string, raw []byte) []byte {
	f.t.Helper()
	b, err := signing.SignEnvelope(k, format, raw)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) write(name string, b []byte) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) license(m map[string]any) string {
	return f.write("license.json", f.sign(f.lic, verify.FormatLicense, marshal(f.t, m)))
}

type entry = map[string]any

// bundle is a router bundle signed by the router's revocation key.
func (f *fixture) bundle(seq int, expires string, entries ...entry) []byte {
	return f.sign(f.rev, verify.FormatRevocation, marshal(f.t, bundlePayload(router, seq, expires, entries...)))
}

// bundleBy is a bundle of the given product signed by k.
func (f *fixture) bundleBy(k *signing.FileKey, product string, seq int, expires string, entries ...entry) []byte {
	return f.sign(k, verify.FormatRevocation, marshal(f.t, bundlePayload(product, seq, expires, entries...)))
}

// bundlePayload is a schema-2 bundle payload as a map, for tests to bend.
func bundlePayload(product string, seq int, expires string, entries ...entry) map[string]any {
	if entries == nil {
		entries = []entry{}
	}
	return map[string]any{"schema": 2, "issuer": "metrum", "product": product, "sequence": seq,
		"issued_at": "2026-05-01T00:00:00Z", "expires_at": expires, "entries": entries}
}

func (f *fixture) leaseFile(license, fp, expires string) string {
	return f.write("lease.json", f.sign(f.lease, verify.FormatLease, marshal(f.t, map[string]any{
		"schema": 1, "lease_id": leaseID1, "license_id": license, "instance_fingerprint": fp,
		"issued_at": "2026-06-01T11:00:00Z", "expires_at": expires})))
}

func (f *fixture) opts(path string) verify.Options {
	return verify.Options{LicensePath: path, KeySet: f.ks, Now: t0, Revocation: verify.RevocationOff}
}

// trustedAs returns a key that can sign anything, added to the fixture's key set with
// only the given purposes (for the router): documents it signs for other purposes must
// be refused.
func (f *fixture) trustedAs(purposes ...verify.Purpose) *signing.FileKey {
	return f.trustedFor([]string{router}, purposes...)
}

// trustedFor is trustedAs for the given products (none: a key that trusts nothing).
func (f *fixture) trustedFor(products []string, purposes ...verify.Purpose) *signing.FileKey {
	f.t.Helper()
	k := mustKey(f.t, verify.AlgEdDSA, verify.PurposeLicense, verify.PurposeRevocation, verify.PurposeLease)
	j, err := signing.JWKOf(k.Public(), k.Algorithm(), purposes, products...)
	if err != nil {
		f.t.Fatal(err)
	}
	var set struct {
		Keys []signing.PublicJWK `json:"keys"`
	}
	if err := json.Unmarshal(f.keysetJSON, &set); err != nil {
		f.t.Fatal(err)
	}
	if f.keysetJSON, err = signing.KeySetJSON(append(set.Keys, j)); err != nil {
		f.t.Fatal(err)
	}
	if f.ks, err = verify.ParseKeySet(f.keysetJSON); err != nil || len(f.ks.Dropped) > 0 {
		f.t.Fatalf("key set: %v", err)
	}
	return k
}
