package verify_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/metrum/licensing/verify"
)

// TestGraceV11 covers the three rules formats.md v1.1 adds to grace, and the three holes
// of issue 10 that they close. Each case first makes a valid observation in a state file
// (grace period 24 h) and then bends one thing.
func TestGraceV11(t *testing.T) {
	statePath := func(f *fixture) string { return filepath.Join(f.dir, "state.json") }
	observe := func(f *fixture, o verify.Options) verify.Options {
		o.StatePath = statePath(f)
		if r := verify.Verify(o); r.Status != V {
			f.t.Fatalf("first observation: %s %s", r.Status, r.Reason)
		}
		return o
	}
	// mustBlock runs o once and insists on the result, as a step before the case's last run.
	mustBlock := func(f *fixture, o verify.Options, reason string) {
		if r := verify.Verify(o); r.Status != B || r.Reason != reason {
			f.t.Fatalf("step: got %s/%s, want blocked/%s", r.Status, r.Reason, reason)
		}
	}
	const shortExpiry = "2026-06-01T14:00:00Z" // 2 h after t0; grace period is 24 h
	gone := func(f *fixture) string { return filepath.Join(f.dir, "gone") }
	corrupt := func(f *fixture) string { return f.write("license.json", []byte("{")) }
	run(t, []tc{
		// Rule 1: grace never runs past the expires_at of the license last observed valid.
		{"missing after the observed license expired (never seen expired)", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(with(payload(), "expires_at", shortExpiry))))
			o.LicensePath, o.Now = gone(f), t0.Add(3*3600e9)
			return o
		}, B, verify.ReasonMissing},
		{"corrupt after the observed license expired", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(with(payload(), "expires_at", shortExpiry))))
			o.LicensePath, o.Now = corrupt(f), t0.Add(2*3600e9)
			return o
		}, B, verify.ReasonInvalid},
		{"missing before the observed license expires: still grace", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(with(payload(), "expires_at", shortExpiry))))
			o.LicensePath, o.Now = gone(f), t0.Add(3600e9)
			return o
		}, G, verify.ReasonMissing},
		{"bundle fault after the observed license expired", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(with(payload(), "expires_at", shortExpiry))))
			o.Revocation, o.FailClosed, o.BundlePath, o.Now = verify.RevocationFile, true, f.write("b.json", []byte("{")), t0.Add(3*3600e9)
			o.LicensePath = corrupt(f)
			return o
		}, B, verify.ReasonInvalid},

		// Rule 2 and hole 1: expired / revoked / suspended / superseded end the observation.
		{"hole 1: seen expired, then deleted", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(with(payload(), "expires_at", shortExpiry))))
			o.Now = t0.Add(2*3600e9 + 1e9)
			mustBlock(f, o, verify.ReasonExpired)
			o.LicensePath = gone(f)
			return o
		}, B, verify.ReasonMissing},
		{"hole 1: seen expired, then corrupted", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(with(payload(), "expires_at", shortExpiry))))
			o.Now = t0.Add(2*3600e9 + 1e9)
			mustBlock(f, o, verify.ReasonExpired)
			o.LicensePath = corrupt(f)
			return o
		}, B, verify.ReasonInvalid},
		{"hole 1: seen revoked, then deleted", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			o.Revocation, o.BundlePath = verify.RevocationFile, f.write("b.json", f.bundle(1, future, revoked(licID, "revoked")))
			mustBlock(f, o, verify.ReasonRevoked)
			o.LicensePath = gone(f)
			return o
		}, B, verify.ReasonMissing},
		{"seen suspended, then bundle corrupted", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			o.Revocation, o.FailClosed, o.BundlePath = verify.RevocationFile, true, f.write("b.json", f.bundle(1, future, revoked(licID, "suspended")))
			mustBlock(f, o, verify.ReasonSuspended)
			o.BundlePath = f.write("b.json", []byte("{"))
			return o
		}, B, verify.ReasonRevocationCheckFailed},
		{"seen superseded, then corrupted", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			o.Revocation, o.BundlePath = verify.RevocationFile, f.write("b.json", f.bundle(1, future, revoked(licID, "superseded")))
			mustBlock(f, o, verify.ReasonSuperseded)
			o.LicensePath = corrupt(f)
			return o
		}, B, verify.ReasonInvalid},
		{"a new valid observation after an ended one gives grace again", func(f *fixture) verify.Options {
			o := observe(f, f.opts(f.license(payload())))
			o.Revocation, o.BundlePath = verify.RevocationFile, f.write("b.json", f.bundle(1, future, revoked(licID, "suspended")))
			mustBlock(f, o, verify.ReasonSuspended)
			o.BundlePath = f.write("b.json", f.bundle(2, future)) // the suspension is lifted
			if r := verify.Verify(o); r.Status != V {
				f.t.Fatalf("after lifting: %s %s", r.Status, r.Reason)
			}
			o.LicensePath = gone(f)
			return o
		}, G, verify.ReasonMissing},

		// Rule 3 and hole 2: rolled-back and equivocating bundles are never graced.
		{"hole 2: rolled back (4 after 5), fail closed, within grace", func(f *fixture) verify.Options {
			o := observe(f, f.bundled(f.bundle(5, future), false, true))
			o.BundlePath = f.write("bundle.json", f.bundle(4, future))
			return o
		}, B, verify.ReasonRevocationCheckFailed},
		{"hole 2: equivocating (another 5), fail closed, within grace", func(f *fixture) verify.Options {
			o := observe(f, f.bundled(f.bundle(5, future), false, true))
			o.BundlePath = f.write("bundle.json", f.bundle(5, future, revoked(otherID, "revoked")))
			return o
		}, B, verify.ReasonRevocationCheckFailed},
		{"rolled back, fail open: skipped as before", func(f *fixture) verify.Options {
			o := observe(f, f.bundled(f.bundle(5, future), false, false))
			o.BundlePath = f.write("bundle.json", f.bundle(4, future))
			return o
		}, V, ""},
		{"transient bundle fault, fail closed, within grace: still grace", func(f *fixture) verify.Options {
			o := observe(f, f.bundled(f.bundle(5, future), false, true))
			o.BundlePath = f.write("bundle.json", []byte("{"))
			return o
		}, G, verify.ReasonRevocationCheckFailed},
		{"expired bundle, required, fail closed, within grace: still grace", func(f *fixture) verify.Options {
			o := observe(f, f.bundled(f.bundle(5, future), true, true))
			o.BundlePath = f.write("bundle.json", f.bundle(6, "2026-06-01T12:30:00Z"))
			o.Now = t0.Add(3600e9)
			return o
		}, G, verify.ReasonRevocationCheckFailed},
		{"untrusted bundle, fail closed, within grace: still grace", func(f *fixture) verify.Options {
			o := observe(f, f.bundled(f.bundle(5, future), false, true))
			raw := marshal(f.t, bundlePayload(router, 6, future))
			o.BundlePath = f.write("bundle.json", f.sign(f.trustedAs(verify.PurposeLicense), verify.FormatRevocation, raw))
			return o
		}, G, verify.ReasonRevocationCheckFailed},
	})
}

// TestStateRecordsEnd checks that the ended result is what the state file says after a
// revoked run, and that a valid run stores the license's expires_at.
func TestStateRecordsEnd(t *testing.T) {
	f := newFixture(t)
	o := f.opts(f.license(payload()))
	o.StatePath = filepath.Join(f.dir, "state.json")
	verify.Verify(o)
	st, _, err := verify.ReadState(o.StatePath)
	if err != nil || st.LastValidLicense != licID || !st.LastValidExpiresAt.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("after valid: %+v %v", st, err)
	}
	o.Revocation, o.BundlePath = verify.RevocationFile, f.write("b.json", f.bundle(1, future, revoked(licID, "revoked")))
	o.Now = t0.Add(60e9)
	verify.Verify(o)
	st, _, err = verify.ReadState(o.StatePath)
	if err != nil || st.LastValidLicense != "" || !st.LastValidAt.IsZero() || st.EndedLicense != licID || st.EndedReason != verify.ReasonRevoked || !st.EndedAt.Equal(o.Now) {
		t.Fatalf("after revoked: %+v %v", st, err)
	}
	info, err := os.Stat(o.StatePath)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v %v", info.Mode(), err)
	}
}
