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
	ks                                   *verify.KeySet
	keysetJSON                           []byte
}

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
		lic:   mustKey(t, verify.AlgEdDSA, verify.PurposeLicense),
		rev:   mustKey(t, verify.AlgEdDSA, verify.PurposeRevocation),
		lease: mustKey(t, verify.AlgEdDSA, verify.PurposeLease),
		es:    mustKey(t, verify.AlgES256, verify.PurposeLicense, verify.PurposeRevocation),
		rsa:   rsaKeyCache,
		edJWS: mustKey(t, verify.AlgEdDSA, verify.PurposeLicense),
		bad:   mustKey(t, verify.AlgEdDSA, verify.PurposeLicense), // not in the key set
	}
	var jwks []signing.PublicJWK
	for _, k := range []*signing.FileKey{f.lic, f.rev, f.lease, f.es, f.rsa, f.edJWS} {
		j, err := signing.JWKOf(k.Public(), k.Algorithm(), k.Purposes())
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

func (f *fixture) bundle(seq int, expires string, entries ...entry) []byte {
	if entries == nil {
		entries = []entry{}
	}
	return f.sign(f.rev, verify.FormatRevocation, marshal(f.t, map[string]any{
		"schema": 1, "issuer": "metrum", "sequence": seq, "issued_at": "2026-05-01T00:00:00Z",
		"expires_at": expires, "entries": entries}))
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
// only the given purposes: documents it signs for other purposes must be refused.
func (f *fixture) trustedAs(purposes ...verify.Purpose) *signing.FileKey {
	f.t.Helper()
	k := mustKey(f.t, verify.AlgEdDSA, verify.PurposeLicense, verify.PurposeRevocation, verify.PurposeLease)
	j, err := signing.JWKOf(k.Public(), k.Algorithm(), purposes)
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
