package verify_test

import (
	"path/filepath"
	"testing"

	"github.com/metrum/licensing/verify"
)

// The attack stories behind formats.md v1.2, each as the host that is attacked sees
// it. (Story 3, a restored issuer re-using sequences, is the issuer's.)

// Story 1: the customer hands a router host a newer bundle of another product from the
// same issuer. Under --require-current-bundle --fail-closed-on-bundle-error the router
// is blocked, never graced, and its state keeps the router's own sequence, so the
// genuine router bundle still verifies afterwards.
func TestAttackOtherProductsBundle(t *testing.T) {
	for name, sign := range map[string]func(f *fixture) []byte{
		// Signed by CoreSDK's own revocation key: authentic, but not the router's (7c).
		"CoreSDK's key": func(f *fixture) []byte { return f.bundleBy(f.revSDK, coresdk, 900, future) },
		// Signed by a key trusted for both products: authentic, still not the router's.
		"a key of both products": func(f *fixture) []byte {
			return f.sign(f.es, "metrum.revocation.v1", marshal(f.t, bundlePayload(coresdk, 900, future)))
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			o := f.bundled(f.bundle(5, future, revoked(otherID, "revoked")), true, true)
			o.StatePath = filepath.Join(f.dir, "state.json")
			if r := verify.Verify(o); r.Status != V {
				t.Fatalf("genuine router bundle 5: %s %s %s", r.Status, r.Reason, r.Detail)
			}
			// The revoking router bundle 6 the customer holds back.
			o.BundlePath = f.write("bundle.json", sign(f))
			o.Now = t0.Add(60e9) // well within the 24 h grace period
			r := verify.Verify(o)
			if r.Status != B || r.Reason != verify.ReasonRevocationCheckFailed || r.BundleSequence != nil {
				t.Fatalf("other product's bundle: %s %s (%s) seq %v, want blocked check-failed", r.Status, r.Reason, r.Detail, r.BundleSequence)
			}
			st, _, err := verify.ReadState(o.StatePath)
			if err != nil {
				t.Fatal(err)
			}
			if m := st.Bundles[verify.BundleScope{Issuer: "metrum", Product: router}]; m.Sequence != 5 || len(st.Bundles) != 1 {
				t.Fatalf("state moved by another product's bundle: %+v", st.Bundles)
			}
			// Fail-open, it is skipped and says so: still nothing moves.
			o.FailClosed = false
			if r := verify.Verify(o); r.Status != V || r.BundleSequence != nil || len(r.Warnings) == 0 {
				t.Fatalf("fail-open: %s %s %v", r.Status, r.Reason, r.Warnings)
			}
			// The genuine router bundles still verify.
			o.FailClosed = true
			for _, seq := range []int{5, 6} {
				o.BundlePath = f.write("bundle.json", f.bundle(seq, future, revoked(otherID, "revoked")))
				if r := verify.Verify(o); r.Status != V || *r.BundleSequence != int64(seq) {
					t.Fatalf("genuine router bundle %d afterwards: %s %s %s", seq, r.Status, r.Reason, r.Detail)
				}
			}
		})
	}
}

// Story 2: a state file recorded license X as revoked; a later bundle (higher
// sequence, not listing X: a restored or compromised issuer) does not bring X back.
func TestAttackRevocationUndone(t *testing.T) {
	f := newFixture(t)
	o := f.bundled(f.bundle(1, future, revoked(licID, "revoked")), true, true)
	o.StatePath = filepath.Join(f.dir, "state.json")
	if r := verify.Verify(o); r.Reason != verify.ReasonRevoked {
		t.Fatalf("first: %s %s", r.Status, r.Reason)
	}
	steps := []struct {
		name   string
		bend   func(o *verify.Options)
		reason string
	}{
		{"a later bundle that drops X", func(o *verify.Options) { o.BundlePath = f.write("bundle.json", f.bundle(2, future)) }, verify.ReasonRevoked},
		{"a later bundle that lists X as only suspended", func(o *verify.Options) {
			o.BundlePath = f.write("bundle.json", f.bundle(3, future, revoked(licID, "suspended")))
		}, verify.ReasonRevoked},
		{"a malformed bundle, fail-open", func(o *verify.Options) {
			o.BundlePath, o.FailClosed, o.RequireCurrent = f.write("bundle.json", []byte("{")), false, false
		}, verify.ReasonRevoked},
		{"no bundle at all, revocation off", func(o *verify.Options) {
			o.BundlePath, o.RequireCurrent, o.Revocation = "", false, verify.RevocationOff
		}, verify.ReasonRevoked},
		{"after X expired: expired, and the record is dropped", func(o *verify.Options) { o.Now = mustTime("2027-01-01T00:00:00Z") }, verify.ReasonExpired},
	}
	for _, s := range steps {
		s.bend(&o)
		o.Now = maxTime(o.Now, t0.Add(3600e9))
		if r := verify.Verify(o); r.Status != B || r.Reason != s.reason {
			t.Fatalf("%s: %s %s (%s), want %s", s.name, r.Status, r.Reason, r.Detail, s.reason)
		}
	}
	st, _, err := verify.ReadState(o.StatePath)
	if err != nil || len(st.Revoked) != 0 {
		t.Fatalf("revoked record after expiry: %v %v", st.Revoked, err)
	}
}

// A suspension, unlike a revocation, is lifted by a later bundle that no longer lists
// it.
func TestSuspensionIsLifted(t *testing.T) {
	f := newFixture(t)
	o := f.bundled(f.bundle(1, future, revoked(licID, "suspended")), true, true)
	o.StatePath = filepath.Join(f.dir, "state.json")
	if r := verify.Verify(o); r.Reason != verify.ReasonSuspended {
		t.Fatalf("suspended: %s %s", r.Status, r.Reason)
	}
	o.BundlePath = f.write("bundle.json", f.bundle(2, future))
	if r := verify.Verify(o); r.Status != V {
		t.Fatalf("lifted: %s %s", r.Status, r.Reason)
	}
}

// Story 4: a stale bundle listing X, with require_current_bundle but without
// fail_closed_on_bundle_error: X is revoked (v1.1 skipped the stale bundle's entries).
func TestAttackStaleBundleHidesRevocation(t *testing.T) {
	stale := func(f *fixture, entries ...entry) []byte { return f.bundle(1, past, entries...) }
	run(t, []tc{
		{"stale, listing X, require current, fail open", func(f *fixture) verify.Options {
			return f.bundled(stale(f, revoked(licID, "revoked")), true, false)
		}, B, verify.ReasonRevoked},
		{"stale, listing X, require current, fail closed", func(f *fixture) verify.Options {
			return f.bundled(stale(f, revoked(licID, "revoked")), true, true)
		}, B, verify.ReasonRevoked},
		{"stale, listing X as suspended, require current, fail open", func(f *fixture) verify.Options {
			return f.bundled(stale(f, revoked(licID, "suspended")), true, false)
		}, B, verify.ReasonSuspended},
		{"stale, listing X, current not required", func(f *fixture) verify.Options {
			return f.bundled(stale(f, revoked(licID, "superseded")), false, false)
		}, B, verify.ReasonSuperseded},
		{"stale, not listing X, require current, fail closed", func(f *fixture) verify.Options {
			return f.bundled(stale(f), true, true)
		}, B, verify.ReasonRevocationCheckFailed},
		{"stale, not listing X, require current, fail open: goes on", func(f *fixture) verify.Options {
			return f.bundled(stale(f), true, false)
		}, V, ""},
	})
	f := newFixture(t)
	r := verify.Verify(f.bundled(stale(f), true, false))
	if r.BundleSequence == nil || *r.BundleSequence != 1 || len(r.Warnings) == 0 {
		t.Fatalf("a stale bundle applied fail-open is reported, with a warning: %+v", r)
	}
}

func maxTime(a, b timeT) timeT {
	if a.After(b) {
		return a
	}
	return b
}
