package verify_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/metrum/licensing/verify"
)

const future = "2026-07-01T00:00:00Z"
const past = "2026-05-15T00:00:00Z"

func revoked(id, status string, extra ...any) entry {
	e := entry{"license_id": id, "status": status, "reason": "test", "effective_at": "2026-05-01T00:00:00Z"}
	if status == verify.StatusSuperseded {
		e["superseded_by"] = otherID
	}
	for i := 0; i < len(extra); i += 2 {
		e[extra[i].(string)] = extra[i+1]
	}
	return e
}

// bundled returns options with revocation mode file and the bundle written.
func (f *fixture) bundled(b []byte, requireCurrent, failClosed bool) verify.Options {
	o := f.opts(f.license(payload()))
	o.Revocation, o.RequireCurrent, o.FailClosed = verify.RevocationFile, requireCurrent, failClosed
	o.BundlePath = f.write("bundle.json", b)
	return o
}

func TestRevocation(t *testing.T) {
	run(t, []tc{
		{"bundle absent, not required", func(f *fixture) verify.Options {
			o := f.bundled(nil, false, true)
			o.BundlePath = filepath.Join(f.dir, "none.json")
			return o
		}, V, ""},
		{"bundle absent, required", func(f *fixture) verify.Options {
			o := f.bundled(nil, true, false)
			o.BundlePath = filepath.Join(f.dir, "none.json")
			return o
		}, B, verify.ReasonRevocationRequired},
		{"mode off can't switch off a configured bundle (v1.2)", func(f *fixture) verify.Options {
			o := f.bundled(f.bundle(1, future, revoked(licID, "revoked")), false, false)
			o.Revocation = verify.RevocationOff
			return o
		}, B, verify.ReasonRevoked},
		{"mode off without a bundle or require current: not checked", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.Revocation = verify.RevocationOff
			return o
		}, V, ""},
		{"revoked", func(f *fixture) verify.Options {
			return f.bundled(f.bundle(1, future, revoked(licID, "revoked")), false, false)
		}, B, verify.ReasonRevoked},
		{"suspended", func(f *fixture) verify.Options {
			return f.bundled(f.bundle(1, future, revoked(licID, "suspended")), false, false)
		}, B, verify.ReasonSuspended},
		{"superseded", func(f *fixture) verify.Options {
			return f.bundled(f.bundle(1, future, revoked(licID, "superseded")), false, false)
		}, B, verify.ReasonSuperseded},
		{"revoked beats expired", func(f *fixture) verify.Options {
			o := f.bundled(f.bundle(1, "2030-01-01T00:00:00Z", revoked(licID, "revoked")), false, false)
			o.Now = t0.AddDate(2, 0, 0)
			return o
		}, B, verify.ReasonRevoked},
		{"instance mismatch beats revoked", func(f *fixture) verify.Options {
			o := f.bundled(f.bundle(1, future, revoked(licID, "revoked")), false, false)
			o.LicensePath = f.license(with(payload(), "instance_fingerprint", "a"))
			o.InstanceFingerprint = "b"
			return o
		}, B, verify.ReasonInstanceMismatch},
		{"entry not yet effective", func(f *fixture) verify.Options {
			return f.bundled(f.bundle(1, future, revoked(licID, "revoked", "effective_at", "2026-06-02T00:00:00Z")), false, false)
		}, V, ""},
		{"another license listed", func(f *fixture) verify.Options {
			return f.bundled(f.bundle(1, future, revoked(otherID, "revoked")), true, true)
		}, V, ""},
		{"malformed bundle, fail closed", func(f *fixture) verify.Options { return f.bundled([]byte("{"), false, true) }, B, verify.ReasonRevocationCheckFailed},
		{"malformed bundle, fail open", func(f *fixture) verify.Options { return f.bundled([]byte("{"), false, false) }, V, ""},
		{"bundle signed by a license-only key, fail closed", func(f *fixture) verify.Options {
			raw := marshal(f.t, bundlePayload(router, 1, future))
			return f.bundled(f.sign(f.trustedAs(verify.PurposeLicense), verify.FormatRevocation, raw), false, true)
		}, B, verify.ReasonRevocationCheckFailed},
		{"bundle unsorted, fail closed", func(f *fixture) verify.Options {
			return f.bundled(f.bundle(1, future, revoked(otherID, "revoked"), revoked(licID, "revoked")), false, true)
		}, B, verify.ReasonRevocationCheckFailed},
		{"bundle duplicate entry, fail closed", func(f *fixture) verify.Options {
			return f.bundled(f.bundle(1, future, revoked(licID, "revoked"), revoked(licID, "revoked")), false, true)
		}, B, verify.ReasonRevocationCheckFailed},
		{"superseded without superseded_by, fail closed", func(f *fixture) verify.Options {
			e := revoked(licID, "revoked")
			e["status"] = "superseded"
			return f.bundled(f.bundle(1, future, e), false, true)
		}, B, verify.ReasonRevocationCheckFailed},
		{"superseded_by on a revocation, fail closed", func(f *fixture) verify.Options {
			return f.bundled(f.bundle(1, future, revoked(licID, "revoked", "superseded_by", otherID)), false, true)
		}, B, verify.ReasonRevocationCheckFailed},
		{"expired bundle, require current, fail closed", func(f *fixture) verify.Options {
			return f.bundled(f.bundle(1, past), true, true)
		}, B, verify.ReasonRevocationCheckFailed},
		{"expired bundle, require current, fail open", func(f *fixture) verify.Options {
			return f.bundled(f.bundle(1, past), true, false)
		}, V, ""},
		{"expired bundle not required: entries still apply", func(f *fixture) verify.Options {
			return f.bundled(f.bundle(1, past, revoked(licID, "revoked")), false, true)
		}, B, verify.ReasonRevoked},
		{"rolled back bundle, fail closed, within grace: never graced (v1.1)", func(f *fixture) verify.Options {
			o := f.bundled(f.bundle(5, future), false, true)
			o.StatePath = filepath.Join(f.dir, "state.json")
			verify.Verify(o)
			o.BundlePath = f.write("bundle.json", f.bundle(4, future))
			return o
		}, B, verify.ReasonRevocationCheckFailed},
		{"rolled back bundle, fail closed", func(f *fixture) verify.Options {
			o := f.bundled(f.bundle(5, future), false, true)
			o.LicensePath = f.license(with(payload(), "grace_period_seconds", 0))
			o.StatePath = filepath.Join(f.dir, "state.json")
			verify.Verify(o)
			o.BundlePath = f.write("bundle.json", f.bundle(4, future))
			return o
		}, B, verify.ReasonRevocationCheckFailed},
		{"rolled back bundle, fail open", func(f *fixture) verify.Options {
			o := f.bundled(f.bundle(5, future), false, false)
			o.StatePath = filepath.Join(f.dir, "state.json")
			verify.Verify(o)
			o.BundlePath = f.write("bundle.json", f.bundle(4, future, revoked(licID, "revoked")))
			return o
		}, V, ""},
		{"equivocating bundle, fail closed", func(f *fixture) verify.Options {
			o := f.bundled(f.bundle(5, future), false, true)
			o.LicensePath = f.license(with(payload(), "grace_period_seconds", 0))
			o.StatePath = filepath.Join(f.dir, "state.json")
			verify.Verify(o)
			o.BundlePath = f.write("bundle.json", f.bundle(5, future, revoked(otherID, "revoked")))
			return o
		}, B, verify.ReasonRevocationCheckFailed},
		{"same bundle again is not equivocation", func(f *fixture) verify.Options {
			o := f.bundled(f.bundle(5, future), false, true)
			o.StatePath = filepath.Join(f.dir, "state.json")
			verify.Verify(o)
			return o
		}, V, ""},
		{"newer bundle moves forward", func(f *fixture) verify.Options {
			o := f.bundled(f.bundle(5, future), false, true)
			o.StatePath = filepath.Join(f.dir, "state.json")
			verify.Verify(o)
			o.BundlePath = f.write("bundle.json", f.bundle(6, future, revoked(licID, "suspended")))
			return o
		}, B, verify.ReasonSuspended},
	})
}

func TestBundleSequenceReported(t *testing.T) {
	f := newFixture(t)
	o := f.bundled(f.bundle(7, future), true, true)
	r := verify.Verify(o)
	if r.BundleSequence == nil || *r.BundleSequence != 7 {
		t.Fatalf("bundle_sequence %v", r.BundleSequence)
	}
	o.BundlePath = f.write("bundle.json", []byte("{"))
	o.FailClosed = false
	r = verify.Verify(o)
	if r.Status != V || r.BundleSequence != nil || !strings.Contains(strings.Join(r.Warnings, ";"), "not checked") {
		t.Fatalf("fail-open result should say revocation was not checked: %+v", r)
	}
}

func TestLease(t *testing.T) {
	leased := func(f *fixture, fp string) verify.Options {
		o := f.opts(f.license(with(payload(), "lease", map[string]any{"required": true, "ttl_seconds": 3600, "renew_url": "https://lic.example/v1/leases"})))
		o.InstanceFingerprint = fp
		return o
	}
	run(t, []tc{
		{"lease absent", func(f *fixture) verify.Options { return leased(f, "h1") }, B, verify.ReasonLeaseRequired},
		{"lease path missing", func(f *fixture) verify.Options {
			o := leased(f, "h1")
			o.LeasePath = filepath.Join(f.dir, "none")
			return o
		}, B, verify.ReasonLeaseRequired},
		{"valid lease", func(f *fixture) verify.Options {
			o := leased(f, "h1")
			o.LeasePath = f.leaseFile(licID, "h1", "2026-06-01T13:00:00Z")
			return o
		}, V, ""},
		{"lease expired", func(f *fixture) verify.Options {
			o := leased(f, "h1")
			o.LeasePath = f.leaseFile(licID, "h1", "2026-06-01T12:00:00Z")
			return o
		}, B, verify.ReasonLeaseExpired},
		{"lease for another license", func(f *fixture) verify.Options {
			o := leased(f, "h1")
			o.LeasePath = f.leaseFile(otherID, "h1", "2026-06-01T13:00:00Z")
			return o
		}, B, verify.ReasonLeaseInvalid},
		{"lease for another host", func(f *fixture) verify.Options {
			o := leased(f, "h1")
			o.LeasePath = f.leaseFile(licID, "h2", "2026-06-01T13:00:00Z")
			return o
		}, B, verify.ReasonLeaseInvalid},
		{"lease with no host fingerprint to check", func(f *fixture) verify.Options {
			o := leased(f, "")
			o.LeasePath = f.leaseFile(licID, "h1", "2026-06-01T13:00:00Z")
			return o
		}, B, verify.ReasonLeaseInvalid},
		{"lease signed by a license-only key", func(f *fixture) verify.Options {
			o := leased(f, "h1")
			o.LeasePath = f.write("lease.json", f.sign(f.trustedAs(verify.PurposeLicense), verify.FormatLease, marshal(f.t, map[string]any{
				"schema": 1, "lease_id": leaseID1, "license_id": licID, "instance_fingerprint": "h1",
				"issued_at": "2026-06-01T11:00:00Z", "expires_at": "2026-06-01T13:00:00Z"})))
			return o
		}, B, verify.ReasonLeaseInvalid},
		{"a license file given as the lease", func(f *fixture) verify.Options {
			o := leased(f, "h1")
			o.LeasePath = o.LicensePath
			return o
		}, B, verify.ReasonLeaseInvalid},
		{"expired license before lease", func(f *fixture) verify.Options {
			o := leased(f, "h1")
			o.Now = t0.AddDate(1, 0, 0)
			return o
		}, B, verify.ReasonExpired},
		{"lease before feature", func(f *fixture) verify.Options {
			o := leased(f, "h1")
			o.Features = []string{"pii_filtering"}
			return o
		}, B, verify.ReasonLeaseRequired},
		{"lease not required: lease not checked", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.LeasePath = f.write("lease.json", []byte("junk"))
			return o
		}, V, ""},
	})
}

func TestGrace(t *testing.T) {
	statePath := func(f *fixture) string { return filepath.Join(f.dir, "state.json") }
	observed := func(f *fixture) verify.Options {
		o := f.opts(f.license(payload()))
		o.StatePath = statePath(f)
		if r := verify.Verify(o); r.Status != V {
			f.t.Fatalf("first observation: %s %s", r.Status, r.Reason)
		}
		return o
	}
	run(t, []tc{
		{"missing within grace", func(f *fixture) verify.Options {
			o := observed(f)
			o.LicensePath, o.Now = filepath.Join(f.dir, "gone"), t0.Add(3600e9)
			return o
		}, G, verify.ReasonMissing},
		{"invalid within grace", func(f *fixture) verify.Options {
			o := observed(f)
			o.LicensePath, o.Now = f.write("license.json", []byte("{")), t0.Add(3600e9)
			return o
		}, G, verify.ReasonInvalid},
		{"missing after grace", func(f *fixture) verify.Options {
			o := observed(f)
			o.LicensePath, o.Now = filepath.Join(f.dir, "gone"), t0.Add(86400e9)
			return o
		}, B, verify.ReasonMissing},
		{"grace does not extend itself", func(f *fixture) verify.Options {
			o := observed(f)
			o.LicensePath, o.Now = filepath.Join(f.dir, "gone"), t0.Add(80000e9)
			if r := verify.Verify(o); r.Status != G {
				f.t.Fatalf("expected grace first, got %s", r.Status)
			}
			o.Now = t0.Add(86401e9)
			return o
		}, B, verify.ReasonMissing},
		{"bundle check failed within grace", func(f *fixture) verify.Options {
			o := observed(f)
			o.Revocation, o.FailClosed, o.BundlePath, o.Now = verify.RevocationFile, true, f.write("b.json", []byte("{")), t0.Add(60e9)
			return o
		}, G, verify.ReasonRevocationCheckFailed},
		{"no grace for expiry", func(f *fixture) verify.Options {
			o := f.opts(f.license(with(payload(), "expires_at", "2026-06-01T13:00:00Z")))
			o.StatePath = statePath(f)
			verify.Verify(o)
			o.Now = t0.Add(2 * 3600e9)
			return o
		}, B, verify.ReasonExpired},
		{"no grace for revocation", func(f *fixture) verify.Options {
			o := observed(f)
			o.Revocation, o.BundlePath = verify.RevocationFile, f.write("b.json", f.bundle(1, future, revoked(licID, "revoked")))
			return o
		}, B, verify.ReasonRevoked},
		{"no grace without a state file", func(f *fixture) verify.Options {
			return f.opts(filepath.Join(f.dir, "gone"))
		}, B, verify.ReasonMissing},
		{"no grace on a tampered state file", func(f *fixture) verify.Options {
			o := observed(f)
			f.write("state.json", []byte(strings.Repeat(" ", 3)))
			o.LicensePath = filepath.Join(f.dir, "gone")
			return o
		}, B, verify.ReasonMissing},
		{"no grace on a rolled-back clock", func(f *fixture) verify.Options {
			o := observed(f)
			o.LicensePath, o.Now = filepath.Join(f.dir, "gone"), t0.Add(-3600e9)
			return o
		}, B, verify.ReasonMissing},
		{"zero grace period", func(f *fixture) verify.Options {
			o := f.opts(f.license(with(payload(), "grace_period_seconds", 0)))
			o.StatePath = statePath(f)
			verify.Verify(o)
			o.LicensePath = filepath.Join(f.dir, "gone")
			return o
		}, B, verify.ReasonMissing},
	})
}
