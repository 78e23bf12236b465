package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/usage"
	"github.com/metrum/licensing/verify"
)

// coreSDKToken signs the token of CoreSDK's document (its "How license tokens work"
// claims, with the expiry of its output examples) with an RS256 key made now.
type coreSDK struct {
	keyset, token string
	key           *signing.FileKey
}

func mustCoreSDK(t *testing.T, sub, plan string, ent map[string]any) *coreSDK {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k, err := signing.NewFileKey(priv, verify.AlgRS256, []verify.Purpose{verify.PurposeLicense})
	if err != nil {
		t.Fatal(err)
	}
	j, _ := signing.JWKOf(k.Public(), k.Algorithm(), k.Purposes(), verify.ProductCoreSDK)
	ks, _ := signing.KeySetJSON([]signing.PublicJWK{j})
	dir := t.TempDir()
	c := &coreSDK{keyset: filepath.Join(dir, "keyset.json"), key: k}
	os.WriteFile(c.keyset, ks, 0o644)
	exp := time.Date(2027, 3, 19, 12, 0, 0, 0, time.UTC)
	claims, _ := json.Marshal(map[string]any{"iss": "https://licensing.coresdk.io", "sub": sub,
		"iat": exp.AddDate(-1, 0, -1).Unix(), "exp": exp.Unix(), "jti": "lic_01HZY3QK8Y0000000000000005",
		"plan": plan, "entitlements": ent})
	if c.token, err = signing.SignJWS(k, claims); err != nil {
		t.Fatal(err)
	}
	return c
}

var docEntitlements = map[string]any{"max_tenants": 50, "max_rps": 5000, "features": []string{"feature_flags", "audit_trails", "saml", "scim"}}

// The verifier's outputs, line by line, against CoreSDK's document: `core license
// verify --token` and `core license status` (testdata/*.golden are its example
// outputs as printed there, without the "# " of its shell comments).
func TestGoldenCoreSDK(t *testing.T) {
	c := mustCoreSDK(t, "org_acme", "team", docEntitlements)
	for _, now := range []string{"2026-03-19T12:00:00Z", "2026-03-19T12:00:00.5Z", "2026-03-19T23:59:59Z", "2026-03-19T00:00:00Z"} {
		for name, args := range map[string][]string{
			"coresdk-verify.golden": {"verify", "--token", c.token, "--keyset", c.keyset, "--now", now},
			"coresdk-status.golden": {"status", "--token", c.token, "--keyset", c.keyset, "--now", now, "--tenants-in-use", "12"},
		} {
			want, _ := os.ReadFile(filepath.Join("testdata", name))
			out, stderr, code := runCLI(args...)
			if code != 0 {
				t.Fatalf("%s at %s: exit %d %s", name, now, code, stderr)
			}
			gl, wl := strings.Split(out, "\n"), strings.Split(string(want), "\n")
			for i := 0; i < max(len(gl), len(wl)); i++ {
				var g, w string
				if i < len(gl) {
					g = gl[i]
				}
				if i < len(wl) {
					w = wl[i]
				}
				if g != w {
					t.Errorf("%s at %s, line %d:\n got %q\nwant %q", name, now, i+1, g, w)
				}
			}
		}
	}
}

// --token, $CORESDK_LICENSE_TOKEN and --license of the same token say the same; both
// flags at once is a usage error.
func TestTokenInputs(t *testing.T) {
	c := mustCoreSDK(t, "org_acme", "team", docEntitlements)
	now := "2026-03-19T12:00:00Z"
	file := filepath.Join(t.TempDir(), "license.jwk")
	os.WriteFile(file, []byte(c.token+"\n"), 0o644)
	want, _, _ := runCLI("verify", "--license", file, "--keyset", c.keyset, "--now", now)
	if got, _, _ := runCLI("verify", "--token", c.token, "--keyset", c.keyset, "--now", now); got != want {
		t.Errorf("--token:\n%s\nvs --license:\n%s", got, want)
	}
	t.Setenv("CORESDK_LICENSE_TOKEN", c.token)
	if got, _, code := runCLI("verify", "--keyset", c.keyset, "--now", now); got != want || code != 0 {
		t.Errorf("$CORESDK_LICENSE_TOKEN: exit %d\n%s", code, got)
	}
	if _, _, code := runCLI("verify", "--token", c.token, "--license", file, "--keyset", c.keyset); code != 2 {
		t.Errorf("both: exit %d", code)
	}
	t.Setenv("CORESDK_LICENSE_TOKEN", "")
	if _, stderr, code := runCLI("verify", "--keyset", c.keyset); code != 2 || !strings.Contains(stderr, "--token") {
		t.Errorf("neither: exit %d %s", code, stderr)
	}
}

// Day counts come from --now, never the wall clock, and never one short; an expired
// license says how long ago, blocked.
func TestDayCounts(t *testing.T) {
	c := mustCoreSDK(t, "cus_01HZY3QK8Y0000000000000003", "enterprise", map[string]any{"features": []string{"saml"}})
	out, _, code := runCLI("verify", "--token", c.token, "--keyset", c.keyset, "--now", "2027-03-22T08:00:00Z")
	if code != 1 || !strings.HasPrefix(out, "Status: BLOCKED (license-expired)\n") || !strings.Contains(out, "Expires: 2027-03-19 (expired 3 days ago)\n") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	// A cus_ subject (the issuer's tokens) prints as it is; enterprise is unlimited.
	out, _, _ = runCLI("status", "--token", c.token, "--keyset", c.keyset, "--now", "2027-03-19T11:00:00Z", "--tenants-in-use", "900")
	for _, want := range []string{"Status: active\n", "Expires: 2027-03-19 (today)\n", "Tenants in use: 900 / unlimited\n", "RPS limit: unlimited\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "max_tenants") || !strings.Contains(out, "Warning: license expires today (2027-03-19T12:00:00Z)") {
		t.Errorf("warnings:\n%s", out)
	}
	out, _, _ = runCLI("verify", "--token", c.token, "--keyset", c.keyset, "--now", "2026-03-19T12:00:00Z")
	if !strings.Contains(out, "Org: cus_01HZY3QK8Y0000000000000003\n") {
		t.Errorf("%s", out)
	}
	f := mustFiles(t) // a router license expiring in 20 days from now
	out, _, _ = runCLI("verify", "--license", f.license, "--keyset", f.keyset, "--instance-fingerprint", "host-1", "--lease", f.lease, "--now", time.Now().UTC().Format(time.RFC3339))
	if !strings.Contains(out, "(20 days)") || !strings.Contains(out, "license expires in 20 days") {
		t.Errorf("router license:\n%s", out)
	}
}

// status: over the plan's tenants is license-limit-exceeded; a requested limit the
// license lacks is warned about.
func TestStatusLimits(t *testing.T) {
	c := mustCoreSDK(t, "org_acme", "team", docEntitlements)
	out, _, code := runCLI("status", "--token", c.token, "--keyset", c.keyset, "--now", "2026-03-19T12:00:00Z", "--tenants-in-use", "51")
	if code != 1 || !strings.Contains(out, "Status: blocked (license-limit-exceeded)\n") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	out, _, code = runCLI("verify", "--token", c.token, "--keyset", c.keyset, "--now", "2026-03-19T12:00:00Z", "--limit", "max_tenant=3")
	if code != 0 || !strings.Contains(out, `Warning: limit "max_tenant" is not in the license (unlimited): nothing was checked`) {
		t.Fatalf("exit %d\n%s", code, out)
	}
	out, _, _ = runCLI("status", "--token", c.token, "--keyset", c.keyset, "--now", "2026-03-19T12:00:00Z", "--json")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil || m["status"] != "active" || m["tenants_max"] != float64(50) || m["org"] != "acme" || m["days_until_expiry"] != float64(365) {
		t.Fatalf("%v %s", err, out)
	}
}

// version names the key set: the SHA-256 of its exact bytes and its key IDs.
func TestVersion(t *testing.T) {
	c := mustCoreSDK(t, "org_acme", "team", docEntitlements)
	data, _ := os.ReadFile(c.keyset)
	sum := sha256.Sum256(data)
	out, _, code := runCLI("version", "--keyset", c.keyset)
	if code != 0 || !strings.Contains(out, "sha256:"+hex.EncodeToString(sum[:])) || !strings.Contains(out, c.key.KeyID()) || !strings.HasPrefix(out, "verifier ") {
		t.Fatalf("%s", out)
	}
	out, _, _ = runCLI("version")
	if !strings.Contains(out, "(0 keys)") || !strings.Contains(out, errNoKeys) {
		t.Fatalf("the repository's build:\n%s", out)
	}
}

// keys --strict: what a release needs (keys, all trusted, all with products).
func TestKeysStrict(t *testing.T) {
	c := mustCoreSDK(t, "org_acme", "team", docEntitlements)
	if _, _, code := runCLI("keys", "--keyset", c.keyset, "--strict"); code != 0 {
		t.Error("a good set refused")
	}
	dir := t.TempDir()
	j, _ := signing.JWKOf(c.key.Public(), c.key.Algorithm(), c.key.Purposes()) // no products
	noProducts, _ := signing.KeySetJSON([]signing.PublicJWK{j})
	for name, data := range map[string][]byte{"empty": []byte(`{"keys":[]}`), "no products": noProducts} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		os.WriteFile(p, data, 0o644)
		if _, stderr, code := runCLI("keys", "--keyset", p, "--strict"); code != 1 || !strings.Contains(stderr, "keys --strict") {
			t.Errorf("%s: exit %d %s", name, code, stderr)
		}
	}
}

// install keeps the file it replaces as DEST.previous.
func TestInstallKeepsPrevious(t *testing.T) {
	c := mustCoreSDK(t, "org_acme", "team", docEntitlements)
	c2 := mustCoreSDK(t, "org_acme", "team", map[string]any{"max_tenants": 60, "features": []string{}})
	both := filepath.Join(t.TempDir(), "keyset.json")
	var set1, set2 struct {
		Keys []signing.PublicJWK `json:"keys"`
	}
	b1, _ := os.ReadFile(c.keyset)
	b2, _ := os.ReadFile(c2.keyset)
	json.Unmarshal(b1, &set1)
	json.Unmarshal(b2, &set2)
	ks, _ := signing.KeySetJSON(append(set1.Keys, set2.Keys...))
	os.WriteFile(both, ks, 0o644)
	dest := filepath.Join(t.TempDir(), "license.token")
	now := "2026-03-19T12:00:00Z"
	if _, stderr, code := runCLI("install", "--token", c.token, "--dest", dest, "--keyset", both, "--now", now); code != 0 {
		t.Fatalf("first install: %s", stderr)
	}
	if _, err := os.Stat(dest + ".previous"); !os.IsNotExist(err) {
		t.Fatal("a .previous with nothing before")
	}
	if _, stderr, code := runCLI("install", "--token", c2.token, "--dest", dest, "--keyset", both, "--now", now); code != 0 {
		t.Fatalf("second install: %s", stderr)
	}
	prev, _ := os.ReadFile(dest + ".previous")
	cur, _ := os.ReadFile(dest)
	if string(prev) != c.token+"\n" || string(cur) != c2.token+"\n" {
		t.Fatalf("previous %q\ncurrent %q", prev, cur)
	}
}

// usage export writes the reports a recorder keeps as one upload body, verified.
func TestUsageExport(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	r, err := usage.Open(usage.Options{Dir: dir, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	r.SetLicense(usage.License{ID: "lic_01HZY3QK8Y0000000000000001", Product: "genai-smart-router", TokenBudget: -1})
	for i := 0; i < 3; i++ {
		r.Consume(10)
		now = now.Add(time.Hour)
		r.Tick()
	}
	out := filepath.Join(t.TempDir(), "usage.json")
	if o, e, code := runCLI("usage", "export", "--state-dir", dir, "--out", out); code != 0 || !strings.Contains(o, "3 usage reports exported") {
		t.Fatalf("exit %d %s %s", code, o, e)
	}
	body, _ := os.ReadFile(out)
	envs, err := usage.ParseBatch(body)
	if err != nil || len(envs) != 3 {
		t.Fatalf("%d %v", len(envs), err)
	}
	runCLI("usage", "export", "--state-dir", dir, "--since", "2", "--out", out)
	body, _ = os.ReadFile(out)
	if envs, _ := usage.ParseBatch(body); len(envs) != 1 {
		t.Fatalf("--since 2: %d reports", len(envs))
	}
	r.Close()
	if _, _, code := runCLI("usage", "export", "--state-dir", dir); code != 2 {
		t.Error("no --out")
	}
	if got := partName("/x/usage.json", 2); got != "/x/usage.3.json" {
		t.Error(got)
	}
}
