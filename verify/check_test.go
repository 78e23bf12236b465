package verify_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/metrum/licensing/verify"
)

// TestCheckFromBytes: Check verifies documents given as bytes, writes nothing, and
// hands back the next state for the caller to keep when it chooses.
func TestCheckFromBytes(t *testing.T) {
	f := newFixture(t)
	lic := f.sign(f.lic, verify.FormatLicense, marshal(t, payload()))
	in := verify.Input{License: lic, Product: router, Bundle: f.bundle(3, future), RequireCurrent: true, FailClosed: true,
		State: &verify.State{}, KeySet: f.ks, Now: t0}
	r, next := verify.Check(in)
	if r.Status != V || next == nil || next.LastValidLicense != licID || string(next.LastValidFile) != string(lic) ||
		next.Bundles[routerScope].Sequence != 3 || !next.LatestSeen.Equal(t0) {
		t.Fatalf("first check: %s %s, next %+v", r.Status, r.Reason, next)
	}
	if !in.State.Equal(&verify.State{}) {
		t.Fatal("Check changed the state it was given")
	}
	if entries, _ := os.ReadDir(f.dir); len(entries) != 0 {
		t.Fatalf("Check wrote files: %v", entries)
	}
	// The same check against the state it returned moves nothing forward.
	in.State = next
	if r, again := verify.Check(in); r.Status != V || again != nil {
		t.Fatalf("second check: %s, next %+v", r.Status, again)
	}
	// A later one moves the clock; the kept state survives a round trip through bytes.
	in.Now = t0.Add(60e9)
	_, next = verify.Check(in)
	data, err := verify.MarshalState(next)
	if err != nil {
		t.Fatal(err)
	}
	back, err := verify.ParseState(data)
	if err != nil || !back.Equal(next) {
		t.Fatalf("state round trip: %v\n%+v\n%+v", err, back, next)
	}
	// Grace from bytes, with the license gone.
	in.License, in.State, in.Now = nil, back, t0.Add(3600e9)
	if r, _ := verify.Check(in); r.Status != G || r.LicenseID != licID || len(r.Features) != 2 {
		t.Fatalf("grace: %s %s %+v", r.Status, r.Reason, r)
	}
}

func TestCheckInputs(t *testing.T) {
	f := newFixture(t)
	lic := f.sign(f.lic, verify.FormatLicense, marshal(t, payload()))
	leased := f.sign(f.lic, verify.FormatLicense, marshal(t, with(payload(), "lease",
		map[string]any{"required": true, "ttl_seconds": 3600, "renew_url": "https://lic.example/v1/leases"})))
	unreadable := errors.New("permission denied")
	for name, c := range map[string]struct {
		in     verify.Input
		reason string
		next   bool
	}{
		"no license":                         {verify.Input{State: &verify.State{}}, verify.ReasonMissing, true},
		"empty license is invalid":           {verify.Input{License: []byte{}}, verify.ReasonInvalid, false},
		"untrusted state":                    {verify.Input{License: lic, StateErr: verify.ErrStateIntegrity, State: &verify.State{}}, verify.ReasonClockRollback, false},
		"revocation on, no bundle, required": {verify.Input{License: lic, Revocation: true, RequireCurrent: true}, verify.ReasonRevocationRequired, false},
		"require current alone":              {verify.Input{License: lic, RequireCurrent: true}, verify.ReasonRevocationRequired, false},
		"bundle unreadable, fail closed":     {verify.Input{License: lic, BundleErr: unreadable, FailClosed: true}, verify.ReasonRevocationCheckFailed, false},
		"bundle unreadable, fail open":       {verify.Input{License: lic, BundleErr: unreadable}, "", false},
		"lease unreadable":                   {verify.Input{License: leased, LeaseErr: unreadable, InstanceFingerprint: "h1"}, verify.ReasonLeaseInvalid, false},
		"lease absent":                       {verify.Input{License: leased, InstanceFingerprint: "h1"}, verify.ReasonLeaseRequired, false},
		"no state: nothing to keep":          {verify.Input{License: lic}, "", false},
	} {
		c.in.KeySet, c.in.Now = f.ks, t0
		r, next := verify.Check(c.in)
		if r.Reason != c.reason || (next != nil) != c.next {
			t.Errorf("%s: %s %q (%s), next %v; want %q, next %v", name, r.Status, r.Reason, r.Detail, next != nil, c.reason, c.next)
		}
	}
}

// TestVerifyMatchesCheck: Verify over files is Check over their bytes.
func TestVerifyMatchesCheck(t *testing.T) {
	f := newFixture(t)
	o := f.bundled(f.bundle(2, future, revoked(licID, "suspended")), true, true)
	o.StatePath = filepath.Join(f.dir, "state.json")
	lic, _ := os.ReadFile(o.LicensePath)
	bundle, _ := os.ReadFile(o.BundlePath)
	want, next := verify.Check(verify.Input{License: lic, Bundle: bundle, RequireCurrent: true, FailClosed: true, State: &verify.State{}, KeySet: f.ks, Now: t0})
	got := verify.Verify(o)
	if got.Status != want.Status || got.Reason != want.Reason || *got.BundleSequence != *want.BundleSequence {
		t.Fatalf("Verify %+v, Check %+v", got, want)
	}
	if st := readState(t, o.StatePath); !st.Equal(next) {
		t.Fatalf("state file %+v, Check's next %+v", st, next)
	}
}
