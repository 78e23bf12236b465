package signing_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/secretscan"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

const (
	licID  = "lic_01HZY3QK8Y0000000000000001"
	custID = "cus_01HZY3QK8Y0000000000000002"
)

var (
	licensePayload = []byte(`{"schema":1,"license_id":"` + licID + `","product":"genai-smart-router","issuer":"metrum",` +
		`"customer_id":"` + custID + `","customer_name":"Acme","sku":"enterprise-annual","template_version":1,` +
		`"issued_at":"2026-01-01T00:00:00Z","not_before":"2026-01-01T00:00:00Z","expires_at":"2027-01-01T00:00:00Z",` +
		`"features":["routing"],"limits":{"max_instances":2},"grace_period_seconds":3600}`)
	bundlePayload = []byte(`{"schema":2,"issuer":"metrum","product":"genai-smart-router","sequence":7,"issued_at":"2026-01-01T00:00:00Z",` +
		`"expires_at":"2026-01-08T00:00:00Z","entries":[{"license_id":"` + licID + `","status":"revoked","reason":"fraud","effective_at":"2026-01-01T00:00:00Z"}]}`)
	leasePayload = []byte(`{"schema":1,"lease_id":"lea_01HZY3QK8Y0000000000000003","license_id":"` + licID + `",` +
		`"instance_fingerprint":"host-1","issued_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T01:00:00Z"}`)
	jwsClaims = []byte(`{"iss":"https://licensing.coresdk.io","sub":"` + custID + `","iat":1767225600,"exp":1798761600,` +
		`"jti":"` + licID + `","plan":"team","entitlements":{"max_tenants":50,"max_rps":5000,"features":["feature_flags","saml"]}}`)
)

func mustKey(t *testing.T, alg string, purposes ...verify.Purpose) *signing.FileKey {
	t.Helper()
	k, err := signing.GenerateKey(alg, purposes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keySetOf is the verifier's view of the given signers.
func keySetOf(t *testing.T, signers ...signing.Signer) *verify.KeySet {
	t.Helper()
	var jwks []signing.PublicJWK
	for _, s := range signers {
		j, err := signing.JWKOf(s.Public(), s.Algorithm(), s.Purposes(), "genai-smart-router", verify.ProductCoreSDK)
		if err != nil {
			t.Fatal(err)
		}
		jwks = append(jwks, j)
	}
	b, err := signing.KeySetJSON(jwks)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := verify.ParseKeySet(b)
	if err != nil || len(ks.Dropped) > 0 {
		t.Fatalf("key set: %v %v", err, ks.Dropped)
	}
	return ks
}

// TestEveryFormAndAlgorithm signs each document type with each envelope algorithm, and
// CoreSDK tokens with each JWS algorithm, and checks the verifier accepts exactly that.
func TestEveryFormAndAlgorithm(t *testing.T) {
	for _, alg := range []string{verify.AlgEdDSA, verify.AlgES256} {
		k := mustKey(t, alg, verify.PurposeLicense, verify.PurposeRevocation, verify.PurposeLease)
		ks := keySetOf(t, k)
		t.Run("envelope/"+alg, func(t *testing.T) {
			lf, err := signing.SignEnvelope(k, verify.FormatLicense, licensePayload)
			if err != nil {
				t.Fatal(err)
			}
			l, err := verify.ParseLicenseFile(lf, ks)
			if err != nil || l.LicenseID != licID || l.KeyID != k.KeyID() {
				t.Fatalf("license: %v %+v", err, l)
			}
			bf, err := signing.SignEnvelope(k, verify.FormatRevocation, bundlePayload)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := verify.ParseBundleFile(bf, ks); err != nil || b.Sequence != 7 {
				t.Fatalf("bundle: %v", err)
			}
			sf, err := signing.SignEnvelope(k, verify.FormatLease, leasePayload)
			if err != nil {
				t.Fatal(err)
			}
			if ls, err := verify.ParseLeaseFile(sf, ks); err != nil || ls.InstanceFingerprint != "host-1" {
				t.Fatalf("lease: %v", err)
			}
			// The signature binds the type: a lease is never a license.
			if _, err := verify.ParseLicenseFile(sf, ks); err == nil {
				t.Fatal("a lease envelope parsed as a license")
			}
		})
	}
	for _, alg := range []string{verify.AlgRS256, verify.AlgES256, verify.AlgEdDSA} {
		t.Run("jws/"+alg, func(t *testing.T) {
			k := mustKey(t, alg, verify.PurposeLicense)
			tok, err := signing.SignJWS(k, jwsClaims)
			if err != nil {
				t.Fatal(err)
			}
			l, err := verify.ParseLicenseFile([]byte(tok+"\n"), keySetOf(t, k))
			if err != nil {
				t.Fatal(err)
			}
			if l.Form != "jws" || l.Plan != "team" || l.Limits["max_tenants"] != 50 || l.Algorithm != alg {
				t.Fatalf("parsed token: %+v", l)
			}
		})
	}
}

func TestPurposeIsEnforcedWhenSigning(t *testing.T) {
	k := mustKey(t, verify.AlgEdDSA, verify.PurposeLicense)
	if _, err := signing.SignEnvelope(k, verify.FormatLease, leasePayload); !errors.Is(err, signing.ErrPurpose) {
		t.Fatalf("a license key signed a lease: %v", err)
	}
	lease := mustKey(t, verify.AlgEdDSA, verify.PurposeLease)
	if _, err := signing.SignJWS(lease, jwsClaims); !errors.Is(err, signing.ErrPurpose) {
		t.Fatalf("a lease key signed a license token: %v", err)
	}
	rsa := mustKey(t, verify.AlgRS256, verify.PurposeLicense)
	if _, err := signing.SignEnvelope(rsa, verify.FormatLicense, licensePayload); err == nil {
		t.Fatal("an RS256 key signed an envelope")
	}
}

func mustKEK(t *testing.T, dir, name string) *signing.KEK {
	t.Helper()
	kek, err := signing.NewKEKFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

// sealedFile is the JSON of a sealed key file, member by member.
type sealedFile map[string]any

func readSealed(t *testing.T, path string) sealedFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m sealedFile
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func writeSealed(t *testing.T, path string, m sealedFile) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSealedKeysAreBoundToTheirSlot: a sealed key only opens as itself, under its own
// kid, algorithm and purposes. Copying, relabelling or splicing files fails.
func TestSealedKeysAreBoundToTheirSlot(t *testing.T) {
	dir := t.TempDir()
	kek := mustKEK(t, dir, "kek")
	fb := signing.NewFileBackend(filepath.Join(dir, "keys"), kek)
	licKey := mustKey(t, verify.AlgEdDSA, verify.PurposeLicense)
	leaseKey := mustKey(t, verify.AlgEdDSA, verify.PurposeLease)
	for _, k := range []*signing.FileKey{licKey, leaseKey} {
		if err := fb.Save(k); err != nil {
			t.Fatal(err)
		}
	}
	licPath := signing.KeyPath(fb.Dir(), licKey.KeyID())
	leasePath := signing.KeyPath(fb.Dir(), leaseKey.KeyID())
	if k, err := signing.LoadFileKey(licPath, kek, licKey.KeyID()); err != nil || k.KeyID() != licKey.KeyID() {
		t.Fatalf("own slot: %v", err)
	}
	lic, lease := readSealed(t, licPath), readSealed(t, leasePath)

	cases := map[string]func(t *testing.T) (path, want string){
		"file copied over another key's file": func(t *testing.T) (string, string) {
			p := filepath.Join(t.TempDir(), leaseKey.KeyID()+".key")
			writeSealed(t, p, lic)
			return p, leaseKey.KeyID()
		},
		"kid relabelled to another slot": func(t *testing.T) (string, string) {
			m := clone(lic)
			m["kid"] = leaseKey.KeyID()
			p := filepath.Join(t.TempDir(), "k.key")
			writeSealed(t, p, m)
			return p, leaseKey.KeyID()
		},
		"purposes edited to claim lease": func(t *testing.T) (string, string) {
			m := clone(lic)
			m["purposes"] = []string{"license", "lease"}
			p := filepath.Join(t.TempDir(), "k.key")
			writeSealed(t, p, m)
			return p, licKey.KeyID()
		},
		"wrapped data key spliced from another slot": func(t *testing.T) (string, string) {
			m := clone(lic)
			m["wrapped_dek"] = lease["wrapped_dek"]
			p := filepath.Join(t.TempDir(), "k.key")
			writeSealed(t, p, m)
			return p, licKey.KeyID()
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			path, want := mk(t)
			if k, err := signing.LoadFileKey(path, kek, want); err == nil {
				t.Fatalf("opened as %s", k.KeyID())
			}
		})
	}
	t.Run("another KEK", func(t *testing.T) {
		if _, err := signing.LoadFileKey(licPath, mustKEK(t, t.TempDir(), "other"), licKey.KeyID()); err == nil {
			t.Fatal("opened under a different KEK")
		}
	})
	t.Run("record claims other purposes", func(t *testing.T) {
		keys := signing.NewKeys(fb)
		ref := signing.KeyRef{KID: licKey.KeyID(), Alg: verify.AlgEdDSA, Backend: "file",
			Purposes: []verify.Purpose{verify.PurposeLicense, verify.PurposeLease}}
		if _, err := keys.Open(ref); err == nil {
			t.Fatal("a key opened for purposes it was not sealed with")
		}
	})
}

func clone(m sealedFile) sealedFile {
	out := sealedFile{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestLaxFileModesAreRefused(t *testing.T) {
	dir := t.TempDir()
	kek := mustKEK(t, dir, "kek")
	fb := signing.NewFileBackend(filepath.Join(dir, "keys"), kek)
	k := mustKey(t, verify.AlgEdDSA, verify.PurposeLicense)
	if err := fb.Save(k); err != nil {
		t.Fatal(err)
	}
	path := signing.KeyPath(fb.Dir(), k.KeyID())
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file written %v, want 0600", fi.Mode().Perm())
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		os.Chmod(path, mode)
		if _, err := signing.LoadFileKey(path, kek, k.KeyID()); !errors.Is(err, signing.ErrKeyFileMode) {
			t.Fatalf("key file %v: %v", mode, err)
		}
	}
	os.Chmod(filepath.Join(dir, "kek"), 0o644)
	if _, err := signing.LoadKEKFile(filepath.Join(dir, "kek")); !errors.Is(err, signing.ErrKeyFileMode) {
		t.Fatalf("world-readable KEK file: %v", err)
	}
}

func TestRewrapMovesEveryKeyToTheNewKEK(t *testing.T) {
	dir := t.TempDir()
	oldKEK, newKEK := mustKEK(t, dir, "old"), mustKEK(t, dir, "new")
	fb := signing.NewFileBackend(filepath.Join(dir, "keys"), oldKEK)
	var kids []string
	for _, alg := range []string{verify.AlgEdDSA, verify.AlgES256} {
		s, _, err := fb.Generate(alg, []verify.Purpose{verify.PurposeLicense})
		if err != nil {
			t.Fatal(err)
		}
		kids = append(kids, s.KeyID())
	}
	done, err := fb.Rewrap(newKEK, nil)
	if err != nil || len(done) != 2 {
		t.Fatalf("rewrap: %v %v", done, err)
	}
	for _, kid := range kids {
		p := signing.KeyPath(fb.Dir(), kid)
		if _, err := signing.LoadFileKey(p, oldKEK, kid); err == nil {
			t.Fatalf("%s still opens under the old KEK", kid)
		}
		k, err := signing.LoadFileKey(p, newKEK, kid)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := signing.SignEnvelope(k, verify.FormatLicense, licensePayload)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verify.ParseLicenseFile(sig, keySetOf(t, k)); err != nil {
			t.Fatal(err)
		}
	}
	// A second run finds everything already moved and changes nothing.
	if done, err := signing.NewFileBackend(fb.Dir(), oldKEK).Rewrap(newKEK, nil); err != nil || len(done) != 0 {
		t.Fatalf("second run: %v %v", done, err)
	}
}

// TestKeyMaterialNeverPrints: formatting a key in any verb shows its ID, not its bytes.
func TestKeyMaterialNeverPrints(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	priv := ed25519.NewKeyFromSeed(seed)
	k, err := signing.NewFileKey(priv, verify.AlgEdDSA, []verify.Purpose{verify.PurposeLicense})
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := sprintf(verb, k)
		if !strings.Contains(out, k.KeyID()) || containsKeyAny(out, seed) {
			t.Fatalf("%s printed %q", verb, out)
		}
	}
	if _, err := signing.NewFileKey(priv, verify.AlgES256, []verify.Purpose{verify.PurposeLicense}); err == nil {
		t.Fatal("an Ed25519 key was accepted as ES256")
	}
}

func sprintf(verb string, v any) string { return fmt.Sprintf(verb, v) }

func containsKeyAny(s string, key []byte) bool { return secretscan.Find([]byte(s), key) != "" }
