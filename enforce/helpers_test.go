package enforce_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

const (
	router = "genai-smart-router"
	licA   = "lic_01HZY3QK8Y0000000000000001"
	licB   = "lic_01HZY3QK8Y0000000000000002"
	cust   = "cus_01HZY3QK8Y0000000000000003"
)

// tb is what kit needs of a test; examples, which have none, use exampleTB.
type tb interface {
	Helper()
	Fatal(args ...any)
	TempDir() string
}

// exampleTB runs the kit in an Example: a failure panics.
type exampleTB struct{}

func (exampleTB) Helper()           {}
func (exampleTB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }
func (exampleTB) TempDir() string {
	d, err := os.MkdirTemp("", "enforce-example-")
	if err != nil {
		panic(err)
	}
	return d
}

// kit signs documents with keys made at test time.
type kit struct {
	t             tb
	dir           string
	lic, rev, jws *signing.FileKey
	ks            *verify.KeySet
	keysetJSON    []byte
}

func newKit(t tb) *kit {
	t.Helper()
	gen := func(alg string, p verify.Purpose) *signing.FileKey {
		k, err := signing.GenerateKey(alg, []verify.Purpose{p})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k := &kit{t: t, dir: t.TempDir(), lic: gen(verify.AlgEdDSA, verify.PurposeLicense),
		rev: gen(verify.AlgEdDSA, verify.PurposeRevocation), jws: gen(verify.AlgES256, verify.PurposeLicense)}
	var jwks []signing.PublicJWK
	for _, x := range []struct {
		k       *signing.FileKey
		product string
	}{{k.lic, router}, {k.rev, router}, {k.jws, verify.ProductCoreSDK}} {
		j, err := signing.JWKOf(x.k.Public(), x.k.Algorithm(), x.k.Purposes(), x.product)
		if err != nil {
			t.Fatal(err)
		}
		jwks = append(jwks, j)
	}
	var err error
	if k.keysetJSON, err = signing.KeySetJSON(jwks); err != nil {
		t.Fatal(err)
	}
	if k.ks, err = verify.ParseKeySet(k.keysetJSON); err != nil {
		t.Fatal(err)
	}
	return k
}

// payload is a valid router license from now-1h for a year, with routing.
func payload(id string, now time.Time) verify.LicensePayload {
	return verify.LicensePayload{Schema: 1, LicenseID: id, Product: router, Issuer: "metrum", CustomerID: cust,
		CustomerName: "Acme", SKU: "enterprise-annual", TemplateVersion: 1,
		IssuedAt: verify.FormatTime(now.Add(-time.Hour)), NotBefore: verify.FormatTime(now.Add(-time.Hour)),
		ExpiresAt: verify.FormatTime(now.Add(365 * 24 * time.Hour)), Features: []string{"admin_reports", "routing"},
		Limits: map[string]int64{"max_concurrency": 8}, GracePeriodSeconds: 86400}
}

func (k *kit) sign(key *signing.FileKey, format string, v any) []byte {
	k.t.Helper()
	raw, err := json.Marshal(v, json.Deterministic(true))
	if err != nil {
		k.t.Fatal(err)
	}
	b, err := signing.SignEnvelope(key, format, raw)
	if err != nil {
		k.t.Fatal(err)
	}
	return b
}

func (k *kit) license(p verify.LicensePayload) []byte { return k.sign(k.lic, verify.FormatLicense, p) }

// bundle is a router bundle listing the given license IDs as revoked.
func (k *kit) bundle(seq int64, now time.Time, revoked ...string) []byte {
	var entries []verify.BundleEntry
	for _, id := range revoked {
		entries = append(entries, verify.BundleEntry{LicenseID: id, Status: "revoked", Reason: "refund", EffectiveAt: verify.FormatTime(now.Add(-time.Minute))})
	}
	if entries == nil {
		entries = []verify.BundleEntry{}
	}
	return k.sign(k.rev, verify.FormatRevocation, verify.BundlePayload{Schema: verify.BundleSchema, Issuer: "metrum", Product: router,
		Sequence: seq, IssuedAt: verify.FormatTime(now.Add(-time.Hour)), ExpiresAt: verify.FormatTime(now.Add(7 * 24 * time.Hour)), Entries: entries})
}

// token is a CoreSDK license token for org_acme, team plan.
func (k *kit) token(now time.Time, tenants, rps int64, features ...string) []byte {
	k.t.Helper()
	claims, _ := json.Marshal(map[string]any{"iss": "https://licensing.coresdk.io", "sub": "org_acme",
		"iat": now.Add(-time.Hour).Unix(), "exp": now.Add(365 * 24 * time.Hour).Unix(), "jti": licB, "plan": "team",
		"entitlements": map[string]any{"max_tenants": tenants, "max_rps": rps, "features": features}})
	tok, err := signing.SignJWS(k.jws, claims)
	if err != nil {
		k.t.Fatal(err)
	}
	return []byte(tok + "\n")
}

// put writes a file atomically (temp, rename), as verifier install does.
func (k *kit) put(name string, data []byte) string {
	k.t.Helper()
	p := filepath.Join(k.dir, name)
	if err := verify.WriteFileAtomic(p, data, 0o644); err != nil {
		k.t.Fatal(err)
	}
	return p
}

func (k *kit) path(name string) string { return filepath.Join(k.dir, name) }

func (k *kit) remove(name string) {
	if err := os.Remove(k.path(name)); err != nil {
		k.t.Fatal(err)
	}
}

// clock is a test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// eventually waits for cond with a deadline: a condition, never a fixed sleep.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
