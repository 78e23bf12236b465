package verify_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/metrum/licensing/verify"
)

// TestGraceV12 covers formats.md v1.2's grace: it serves the license last observed
// valid, whose exact bytes the state file keeps, and nothing more. Each case first
// makes a valid observation of the fixture's license (features admin_reports and
// routing, max_instances 5, grace period 24 h) and then bends one thing.
func TestGraceV12(t *testing.T) {
	observe := func(f *fixture, o verify.Options) verify.Options {
		o.StatePath = filepath.Join(f.dir, "state.json")
		if r := verify.Verify(o); r.Status != V {
			f.t.Fatalf("first observation: %s %s %s", r.Status, r.Reason, r.Detail)
		}
		o.Now = t0.Add(3600e9)
		return o
	}
	gone := func(f *fixture) string { return filepath.Join(f.dir, "gone") }
	// keep rewrites the state file's kept license, through the public API (which MACs).
	keep := func(f *fixture, o verify.Options, bend func([]byte) []byte) {
		st, _, err := verify.ReadState(o.StatePath)
		if err != nil || len(st.LastValidFile) == 0 {
			f.t.Fatalf("no kept license: %v", err)
		}
		st.LastValidFile = bend(st.LastValidFile)
		if err := verify.WriteState(o.StatePath, st); err != nil {
			f.t.Fatal(err)
		}
	}
	// sameIDOtherTerms is a license with the observed ID but more features and limits:
	// the customer's file, signed, yet not what was observed valid.
	sameIDOtherTerms := func(f *fixture) string {
		return f.license(with(payload(), "features", []string{"admin_reports", "pii_filtering", "routing"},
			"limits", map[string]any{"max_instances": 50}))
	}
	brokenBundle := func(f *fixture, o *verify.Options) {
		o.BundlePath, o.FailClosed = f.write("b.json", []byte("{")), true
	}
	run(t, []tc{
		{"missing: grace", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			o.LicensePath = gone(f)
			return o
		}, G, verify.ReasonMissing},
		{"missing: a required feature the kept license has", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			o.LicensePath, o.Features, o.Limits = gone(f), []string{"routing"}, map[string]int64{"max_instances": 5}
			return o
		}, G, verify.ReasonMissing},
		{"missing: a required feature the kept license lacks", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			o.LicensePath, o.Features = gone(f), []string{"pii_filtering"}
			return o
		}, B, verify.ReasonFeatureForbidden},
		{"invalid: a limit above the kept license's", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			o.LicensePath, o.Limits = f.write("license.json", []byte("{")), map[string]int64{"max_instances": 6}
			return o
		}, B, verify.ReasonLimitExceeded},
		{"bundle fault: features are the kept license's, not the file's", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			o.LicensePath, o.Features = sameIDOtherTerms(f), []string{"pii_filtering"}
			brokenBundle(f, &o)
			return o
		}, B, verify.ReasonFeatureForbidden},
		{"bundle fault: limits are the kept license's, not the file's", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			o.LicensePath, o.Limits = sameIDOtherTerms(f), map[string]int64{"max_instances": 6}
			brokenBundle(f, &o)
			return o
		}, B, verify.ReasonLimitExceeded},
		{"bundle fault within the kept license's terms: grace", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			o.LicensePath, o.Limits = sameIDOtherTerms(f), map[string]int64{"max_instances": 5}
			brokenBundle(f, &o)
			return o
		}, G, verify.ReasonRevocationCheckFailed},
		{"kept bytes tampered", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			keep(f, o, func(b []byte) []byte { i := bytes.Index(b, []byte(`"signature":"`)) + 14; b[i] ^= 1; return b })
			o.LicensePath = gone(f)
			return o
		}, B, verify.ReasonMissing},
		{"kept bytes truncated", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			keep(f, o, func(b []byte) []byte { return b[:len(b)/2] })
			o.LicensePath = f.write("license.json", []byte("junk"))
			return o
		}, B, verify.ReasonInvalid},
		{"kept bytes are another (valid) license", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			other, _ := os.ReadFile(f.license(with(payload(), "license_id", otherID)))
			keep(f, o, func([]byte) []byte { return other })
			o.LicensePath = gone(f)
			return o
		}, B, verify.ReasonMissing},
		{"kept bytes' key no longer trusted", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			o.LicensePath = gone(f)
			o.KeySet = keySetWithout(f, f.lic.KeyID())
			return o
		}, B, verify.ReasonMissing},
		{"kept license of another product than expected", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			o.LicensePath, o.Product = gone(f), coresdk
			return o
		}, B, verify.ReasonMissing},
		{"kept license bound to another host", func(f *fixture) verify.Options {
			o := f.opts(f.license(with(payload(), "instance_fingerprint", "host-a")))
			o.InstanceFingerprint = "host-a"
			o = observe(f, o)
			o.LicensePath, o.InstanceFingerprint = gone(f), "host-b"
			return o
		}, B, verify.ReasonMissing},
		{"kept license revoked by the current bundle", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			o.LicensePath, o.BundlePath = gone(f), f.write("b.json", f.bundle(1, future, revoked(licID, "revoked")))
			return o
		}, B, verify.ReasonMissing},
		{"kept license of a required lease, lease expired", func(f *fixture) verify.Options {
			o := f.opts(f.license(with(payload(), "lease", map[string]any{"required": true, "ttl_seconds": 3600, "renew_url": "https://lic.example/v1/leases"})))
			o.InstanceFingerprint, o.LeasePath = "h1", f.leaseFile(licID, "h1", "2026-06-01T13:00:00Z")
			o = observe(f, o)
			o.LicensePath = gone(f)
			return o
		}, B, verify.ReasonMissing},
	})
}

// TestGraceReportsTheKeptLicense: a grace result's fields are the kept license's.
func TestGraceReportsTheKeptLicense(t *testing.T) {
	f := newFixture(t)
	o := f.opts(f.license(payload()))
	o.StatePath = filepath.Join(f.dir, "state.json")
	valid := verify.Verify(o)
	if valid.Status != V {
		t.Fatalf("%s %s", valid.Status, valid.Reason)
	}
	// The file is replaced by one with the same ID and other terms, and the bundle
	// breaks: grace serves what was observed valid.
	o.LicensePath = f.license(with(payload(), "customer_id", "cus_01HZY3QK8Y0000000000000009", "sku", "pilot-30d",
		"features", []string{"pii_filtering"}, "limits", map[string]any{}, "expires_at", "2028-01-01T00:00:00Z"))
	o.BundlePath, o.FailClosed, o.Now = f.write("b.json", []byte("{")), true, t0.Add(60e9)
	r := verify.Verify(o)
	if r.Status != G || !r.GraceActive || r.Reason != verify.ReasonRevocationCheckFailed {
		t.Fatalf("%s %s %s", r.Status, r.Reason, r.Detail)
	}
	if r.LicenseID != valid.LicenseID || r.CustomerID != valid.CustomerID || r.SKU != valid.SKU || r.KeyID != valid.KeyID ||
		r.NotBefore != valid.NotBefore || r.ExpiresAt != valid.ExpiresAt || !slices.Equal(r.Features, valid.Features) ||
		len(r.Limits) != len(valid.Limits) || r.Limits["max_instances"] != 5 || r.License == nil || r.License.SKU != "enterprise-annual" {
		t.Fatalf("grace reports\n%+v\nnot the kept license\n%+v", r, valid)
	}
	// Grace is not an observation: the kept bytes are still the valid run's.
	st := readState(t, o.StatePath)
	current, _ := os.ReadFile(o.LicensePath)
	if bytes.Equal(st.LastValidFile, current) || !st.LastValidAt.Equal(t0) {
		t.Fatal("a grace result replaced the kept license")
	}
}

// TestGraceKeptLicenseRevokedEndsObservation: a bundle that revokes the kept license
// while its file is missing ends the observation and records the revocation, as it
// would have with the file present.
func TestGraceKeptLicenseRevokedEndsObservation(t *testing.T) {
	f := newFixture(t)
	o := f.opts(f.license(payload()))
	o.StatePath = filepath.Join(f.dir, "state.json")
	verify.Verify(o)
	o.LicensePath, o.Now = filepath.Join(f.dir, "gone"), t0.Add(60e9)
	o.BundlePath = f.write("b.json", f.bundle(1, future, revoked(licID, "revoked")))
	if r := verify.Verify(o); r.Status != B {
		t.Fatalf("%s %s", r.Status, r.Reason)
	}
	st := readState(t, o.StatePath)
	if !st.LastValidAt.IsZero() || st.LastValidFile != nil || st.EndedReason != verify.ReasonRevoked || len(st.Revoked) != 1 {
		t.Fatalf("state after the kept license was seen revoked: %+v", st)
	}
	// Even with the bundle gone, no grace, and the license itself stays revoked.
	o.BundlePath = ""
	if r := verify.Verify(o); r.Status != B || r.Reason != verify.ReasonMissing {
		t.Fatalf("%s %s", r.Status, r.Reason)
	}
	o.LicensePath = f.license(payload())
	if r := verify.Verify(o); r.Reason != verify.ReasonRevoked {
		t.Fatalf("%s %s", r.Status, r.Reason)
	}
}

// keySetWithout is the fixture's key set less one key.
func keySetWithout(f *fixture, kid string) *verify.KeySet {
	f.t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := jsonUnmarshal(f.keysetJSON, &set); err != nil {
		f.t.Fatal(err)
	}
	set.Keys = slices.DeleteFunc(set.Keys, func(k map[string]any) bool { return k["kid"] == kid })
	ks, err := verify.ParseKeySet(marshal(f.t, set))
	if err != nil || ks.Lookup(kid) != nil {
		f.t.Fatalf("key set: %v", err)
	}
	return ks
}
