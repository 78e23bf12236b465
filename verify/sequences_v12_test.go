package verify_test

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metrum/licensing/verify"
)

var (
	routerScope  = verify.BundleScope{Issuer: "metrum", Product: router}
	coresdkScope = verify.BundleScope{Issuer: "metrum", Product: coresdk}
)

func readState(t *testing.T, path string) *verify.State {
	t.Helper()
	st, _, err := verify.ReadState(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestSequencesPerProduct: sequences, rollback and equivocation are per (issuer,
// product), and only a bundle that passed steps 7b and 7c moves them.
func TestSequencesPerProduct(t *testing.T) {
	f := newFixture(t)
	state := filepath.Join(f.dir, "state.json")
	routerRun := func(b []byte) *verify.Result {
		o := f.bundled(b, true, true)
		o.StatePath = state
		return verify.Verify(o)
	}
	sdkRun := func(b []byte) *verify.Result {
		o := f.opts(f.jws(f.es, claims()))
		o.Product, o.BundlePath, o.RequireCurrent, o.FailClosed, o.StatePath = coresdk, f.write("sdk-bundle.json", b), true, true, state
		return verify.Verify(o)
	}
	expect := func(step string, r *verify.Result, reason string) {
		t.Helper()
		if r.Reason != reason {
			t.Fatalf("%s: %s %q (%s), want %q", step, r.Status, r.Reason, r.Detail, reason)
		}
	}
	expect("router 5", routerRun(f.bundle(5, future)), "")
	expect("coresdk 2 after router 5", sdkRun(f.bundleBy(f.revSDK, coresdk, 2, future)), "")
	st := readState(t, state)
	if st.Bundles[routerScope].Sequence != 5 || st.Bundles[coresdkScope].Sequence != 2 || len(st.Bundles) != 2 {
		t.Fatalf("marks: %+v", st.Bundles)
	}
	want := st.Bundles

	// None of these moves anything.
	expect("router 4: rolled back", routerRun(f.bundle(4, future)), verify.ReasonRevocationCheckFailed)
	expect("router 5, other content: equivocation", routerRun(f.bundle(5, future, revoked(otherID, "revoked"))), verify.ReasonRevocationCheckFailed)
	expect("coresdk 1: rolled back", sdkRun(f.bundleBy(f.revSDK, coresdk, 1, future)), verify.ReasonRevocationCheckFailed)
	expect("router 9, schema 1 (7b)", routerRun(f.sign(f.rev, verify.FormatRevocation, marshal(t, with(bundlePayload(router, 9, future), "schema", 1)))), verify.ReasonRevocationCheckFailed)
	expect("router 9, coresdk key (7b)", routerRun(f.bundleBy(f.revSDK, router, 9, future)), verify.ReasonRevocationCheckFailed)
	expect("coresdk 9 to the router (7c)", routerRun(f.bundleBy(f.revSDK, coresdk, 9, future)), verify.ReasonRevocationCheckFailed)
	expect("router 9 to coresdk (7c)", sdkRun(f.bundle(9, future)), verify.ReasonRevocationCheckFailed)
	bad := string(f.bundle(9, future))
	bad = bad[:len(bad)-4] + "AAA\"}"
	expect("router 9, bad signature (7b)", routerRun([]byte(bad)), verify.ReasonRevocationCheckFailed)
	if got := readState(t, state).Bundles; len(got) != 2 || got[routerScope] != want[routerScope] || got[coresdkScope] != want[coresdkScope] {
		t.Fatalf("a refused bundle moved the state: %+v, want %+v", got, want)
	}

	expect("router 6", routerRun(f.bundle(6, future)), "")
	if got := readState(t, state).Bundles; got[routerScope].Sequence != 6 || got[coresdkScope] != want[coresdkScope] {
		t.Fatalf("after router 6: %+v", got)
	}
	// Another issuer's bundles count on their own.
	other := f.sign(f.rev, verify.FormatRevocation, marshal(t, with(bundlePayload(router, 1, future), "issuer", "acme")))
	expect("issuer acme, router 1", routerRun(other), "")
	if got := readState(t, state).Bundles; got[verify.BundleScope{Issuer: "acme", Product: router}].Sequence != 1 || got[routerScope].Sequence != 6 {
		t.Fatalf("after acme 1: %+v", got)
	}
}

// TestRevocationMode: mode file when a bundle is given or a current one required
// (formats.md v1.2), whatever the deprecated Revocation field says.
func TestRevocationMode(t *testing.T) {
	run(t, []tc{
		{"require current alone: no bundle", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.RequireCurrent, o.Revocation = true, verify.RevocationOff
			return o
		}, B, verify.ReasonRevocationRequired},
		{"require current, fail closed, no bundle", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.RequireCurrent, o.FailClosed = true, true
			return o
		}, B, verify.ReasonRevocationRequired},
		{"a bundle path with Revocation unset", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.Revocation, o.BundlePath = "", f.write("b.json", f.bundle(1, future, revoked(licID, "revoked")))
			return o
		}, B, verify.ReasonRevoked},
		{"a bundle path that does not exist, required", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.BundlePath, o.RequireCurrent = filepath.Join(f.dir, "none.json"), true
			return o
		}, B, verify.ReasonRevocationRequired},
		{"an unreadable bundle (a folder), fail closed", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.BundlePath, o.FailClosed = f.dir, true
			return o
		}, B, verify.ReasonRevocationCheckFailed},
		{"an unreadable bundle (a folder), fail open", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.BundlePath = f.dir
			return o
		}, V, ""},
		{"an empty bundle file is malformed, not absent", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.BundlePath, o.RequireCurrent, o.FailClosed = f.write("b.json", []byte{}), true, true
			return o
		}, B, verify.ReasonRevocationCheckFailed},
	})
	f := newFixture(t)
	o := f.opts(f.license(payload()))
	o.Revocation = verify.RevocationFile
	if r := verify.Verify(o); r.Status != V || !strings.Contains(strings.Join(r.Warnings, ";"), "no revocation bundle") {
		t.Fatalf("mode file without a bundle: %+v", r)
	}
}

// TestStateUpgrade: v1 (schema 1) and v1.1 (schema 2) state files load and are
// written back as schema 3. Their single bundle sequence, whose product nobody
// recorded, is the floor of every (issuer, product) until that one has its own entry:
// nothing is lowered by the upgrade.
func TestStateUpgrade(t *testing.T) {
	for _, schema := range []int64{1, 2} {
		t.Run(map[int64]string{1: "v1", 2: "v1.1"}[schema], func(t *testing.T) {
			f := newFixture(t)
			state := filepath.Join(f.dir, "state.json")
			b5 := f.bundle(5, future)
			w := verify.StateWire{Schema: schema, LatestSeen: verify.FormatTime(t0), LastValidLicense: licID,
				LastValidAt: verify.FormatTime(t0), LastValidGrace: 86400, BundleSequence: 5, BundleSHA256: payloadSHA256(t, f, b5)}
			if schema == 2 {
				w.LastValidExpiresAt = "2027-01-01T00:00:00Z"
			}
			if err := verify.WriteStateWire(state, w); err != nil {
				t.Fatal(err)
			}
			routerRun := func(b []byte) *verify.Result {
				o := f.bundled(b, true, true)
				o.StatePath, o.Now = state, t0.Add(60e9)
				return verify.Verify(o)
			}
			sdkRun := func(b []byte) *verify.Result {
				o := f.opts(f.jws(f.es, claims()))
				o.Product, o.BundlePath, o.RequireCurrent, o.FailClosed, o.StatePath, o.Now = coresdk, f.write("sdk.json", b), true, true, state, t0.Add(60e9)
				return verify.Verify(o)
			}
			// An upgraded file keeps no license yet: a missing license is not graced.
			miss := f.opts(filepath.Join(f.dir, "gone"))
			miss.StatePath, miss.Now = state, t0.Add(60e9)
			if r := verify.Verify(miss); r.Status != B || r.Reason != verify.ReasonMissing {
				t.Fatalf("grace from a state file without a kept license: %s %s", r.Status, r.Reason)
			}
			steps := []struct {
				name   string
				run    func() *verify.Result
				reason string
			}{
				{"router 4", func() *verify.Result { return routerRun(f.bundle(4, future)) }, verify.ReasonRevocationCheckFailed},
				{"router 5, other content", func() *verify.Result { return routerRun(f.bundle(5, future, revoked(otherID, "revoked"))) }, verify.ReasonRevocationCheckFailed},
				{"coresdk 4", func() *verify.Result { return sdkRun(f.bundleBy(f.revSDK, coresdk, 4, future)) }, verify.ReasonRevocationCheckFailed},
				{"router 5, the same", func() *verify.Result { return routerRun(b5) }, ""},
				{"router 6", func() *verify.Result { return routerRun(f.bundle(6, future)) }, ""},
				{"coresdk 4, after router 6", func() *verify.Result { return sdkRun(f.bundleBy(f.revSDK, coresdk, 4, future)) }, verify.ReasonRevocationCheckFailed},
				{"coresdk 7", func() *verify.Result { return sdkRun(f.bundleBy(f.revSDK, coresdk, 7, future)) }, ""},
			}
			for _, s := range steps {
				if r := s.run(); r.Reason != s.reason {
					t.Fatalf("%s: %s %q (%s), want %q", s.name, r.Status, r.Reason, r.Detail, s.reason)
				}
			}
			raw, _ := os.ReadFile(state)
			if !strings.Contains(string(raw), `"schema":3`) {
				t.Fatalf("not upgraded: %s", raw)
			}
			st := readState(t, state)
			if st.Legacy.Sequence != 5 || st.Bundles[routerScope].Sequence != 6 || st.Bundles[coresdkScope].Sequence != 7 {
				t.Fatalf("upgraded marks: legacy %+v, %+v", st.Legacy, st.Bundles)
			}
		})
	}
}

// TestStateUpgradeKeepsARevocation: a v1.1 state file that ended its observation on
// license-revoked carries that revocation over as final.
func TestStateUpgradeKeepsARevocation(t *testing.T) {
	f := newFixture(t)
	state := filepath.Join(f.dir, "state.json")
	if err := verify.WriteStateWire(state, verify.StateWire{Schema: 2, LatestSeen: verify.FormatTime(t0),
		EndedLicense: licID, EndedReason: verify.ReasonRevoked, EndedAt: verify.FormatTime(t0), BundleSequence: 1}); err != nil {
		t.Fatal(err)
	}
	o := f.bundled(f.bundle(2, future), true, true)
	o.StatePath = state
	if r := verify.Verify(o); r.Reason != verify.ReasonRevoked {
		t.Fatalf("v1.1 revocation undone by a later bundle: %s %s", r.Status, r.Reason)
	}
	// The expiry of the license is learnt when it is seen again.
	if st := readState(t, state); !st.Revoked[licID].Equal(mustTime("2027-01-01T00:00:00Z")) {
		t.Fatalf("revoked: %+v", st.Revoked)
	}
}

func payloadSHA256(t *testing.T, f *fixture, bundle []byte) string {
	t.Helper()
	b, err := verify.ParseBundleFile(bundle, f.ks)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b.PayloadSHA256[:])
}
