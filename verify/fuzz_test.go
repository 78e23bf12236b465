package verify_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

// The fuzz targets feed arbitrary bytes to every parser of untrusted input. They must
// never panic, and must never accept a document that a key of the set did not sign:
// the fuzzer can't forge Ed25519, so anything accepted must be one of the seeds.

func addSeedFiles(f *testing.F, glob string) {
	paths, _ := filepath.Glob(filepath.Join("testdata", glob))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzLicense(f *testing.F) {
	fx := fuzzFixture(f)
	good := fx.sign(fx.lic, verify.FormatLicense, marshal(fx.t, payload()))
	f.Add(good)
	f.Add([]byte(`{"format":"metrum.license.v1","key_id":"","algorithm":"Ed25519","payload":"","signature":""}`))
	addSeedFiles(f, "bad-*")
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := verify.ParseLicenseFile(data, fx.ks)
		if err == nil && l.LicenseID != licID {
			t.Fatalf("accepted a license nobody signed: %s", l.LicenseID)
		}
	})
}

func FuzzPayload(f *testing.F) {
	fx := fuzzFixture(f)
	f.Add(marshal(fx.t, payload()))
	f.Add([]byte(`{"schema":1}`))
	f.Add([]byte(`{"schema":1,"schema":1}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Sign whatever the fuzzer made: only the payload rules stand between it and
		// acceptance, and whatever they accept must re-parse to the same license.
		env, err := signing.SignEnvelope(fx.lic, verify.FormatLicense, raw)
		if err != nil {
			t.Fatal(err)
		}
		l, err := verify.ParseLicenseFile(env, fx.ks)
		if err != nil {
			return
		}
		if l.Product == "" || l.LicenseID == "" || !l.NotBefore.Before(l.ExpiresAt) || l.GracePeriod < 0 {
			t.Fatalf("accepted a payload that breaks the rules: %q", raw)
		}
	})
}

func FuzzBundle(f *testing.F) {
	fx := fuzzFixture(f)
	f.Add(fx.bundle(1, future, revoked(licID, "revoked")))
	f.Add(fx.bundleBy(fx.revSDK, coresdk, 1, future, revoked(licID, "suspended")))
	f.Add(fx.sign(fx.rev, verify.FormatRevocation, marshal(fx.t, with(bundlePayload(router, 1, future), "schema", 1))))
	addSeedFiles(f, "bundle-*")
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := verify.ParseBundleFile(data, fx.ks)
		if err == nil && b.Sequence != 1 {
			t.Fatalf("accepted a bundle nobody signed: %d", b.Sequence)
		}
	})
}

func FuzzLease(f *testing.F) {
	fx := fuzzFixture(f)
	f.Add(readFile(fx, fx.leaseFile(licID, "h1", "2026-06-01T13:00:00Z")))
	f.Fuzz(func(t *testing.T, data string) {
		ls, err := verify.ParseLeaseFile([]byte(data), fx.ks)
		if err == nil && ls.LeaseID != leaseID1 {
			t.Fatalf("accepted a lease nobody signed")
		}
	})
}

func FuzzJWS(f *testing.F) {
	fx := fuzzFixture(f)
	f.Add(readFile(fx, fx.jws(fx.es, claims())))
	f.Add("e30.e30.")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, data string) {
		l, err := verify.ParseLicenseFile([]byte(data), fx.ks)
		if err == nil && l.LicenseID != licID {
			t.Fatalf("accepted a token nobody signed")
		}
	})
}

func FuzzKeySetAndState(f *testing.F) {
	fx := fuzzFixture(f)
	f.Add(fx.keysetJSON)
	f.Add([]byte(`{"schema":1,"latest_seen":"2026-01-01T00:00:00Z","last_valid_grace_period_seconds":0,"bundle_sequence":0,"mac":"00"}`))
	// v1.2 members: the kept license, per-(issuer, product) marks, revoked licenses.
	f.Add([]byte(`{"schema":3,"latest_seen":"2026-01-01T00:00:00Z","last_valid_license_id":"` + licID + `",` +
		`"last_valid_at":"2026-01-01T00:00:00Z","last_valid_grace_period_seconds":60,"last_valid_expires_at":"2027-01-01T00:00:00Z",` +
		`"last_valid_license_file":"eyJmb3JtYXQiOiJtZXRydW0ubGljZW5zZS52MSJ9","bundle_sequence":0,` +
		`"bundles":[{"issuer":"metrum","product":"coresdk","sequence":2,"sha256":"` + strings.Repeat("ab", 32) + `"}],` +
		`"revoked":[{"license_id":"` + otherID + `","expires_at":"2027-01-01T00:00:00Z"}],"mac":"` + strings.Repeat("00", 32) + `"}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"","kid":"","alg":"EdDSA","purposes":["license"],"products":["coresdk",""]}]}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = verify.ParseKeySet(data)
		p := filepath.Join(dir, "state.json")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := verify.ReadState(p); err == nil {
			t.Fatalf("accepted a state file without a valid MAC: %q", data)
		}
	})
}

// fuzzFixture builds the keys a fuzz target verifies against.
func fuzzFixture(f *testing.F) *fixture { return newFixture(f) }
