package leases

import (
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func i64(v int64) *int64 { return &v }

// base is a live, exclusive-locked, lease-required license with a 1 h TTL and room
// for 2 hosts, none of which holds a slot.
func base() entitlements.LeaseState {
	return entitlements.LeaseState{Exclusive: true, Known: true, TokenOK: true, Product: "genai-smart-router", Status: "active",
		NotBefore: now.Add(-time.Hour), ExpiresAt: now.Add(30 * 24 * time.Hour), MaxInstances: i64(2), TTLSeconds: 3600,
		LeaseKeyID: "kid-lease"}
}

func req(fp string) entitlements.LeaseRequest {
	return entitlements.LeaseRequest{LicenseID: "lic_01HZY3QK8Y0000000000000001", Fingerprint: fp, NewLeaseID: "lea_NEW_" + fp}
}

func TestRefusalsInSpecOrder(t *testing.T) {
	cases := []struct {
		name string
		edit func(*entitlements.LeaseState)
		fp   string
		want string
	}{
		{"unknown license", func(s *entitlements.LeaseState) { s.Known = false }, "h", reasonUnauthorized},
		{"wrong token beats everything", func(s *entitlements.LeaseState) { s.TokenOK = false; s.Status = "revoked"; s.StatusEffectiveAt = now }, "h", reasonUnauthorized},
		{"revoked", func(s *entitlements.LeaseState) { s.Status = "revoked"; s.StatusEffectiveAt = now }, "h", verify.ReasonRevoked},
		{"suspended", func(s *entitlements.LeaseState) { s.Status = "suspended"; s.StatusEffectiveAt = now.Add(-time.Hour) }, "h", verify.ReasonSuspended},
		{"superseded", func(s *entitlements.LeaseState) { s.Status = "superseded"; s.StatusEffectiveAt = now }, "h", verify.ReasonSuperseded},
		{"superseded later still serves", func(s *entitlements.LeaseState) { s.Status = "superseded"; s.StatusEffectiveAt = now.Add(time.Second) }, "h", ""},
		{"status beats expiry", func(s *entitlements.LeaseState) { s.Status = "revoked"; s.StatusEffectiveAt = now; s.ExpiresAt = now }, "h", verify.ReasonRevoked},
		// v1.1: the order of formats.md section 6.
		{"not yet valid beats revoked", func(s *entitlements.LeaseState) {
			s.NotBefore = now.Add(time.Second)
			s.Status, s.StatusEffectiveAt = "revoked", now
		}, "h", verify.ReasonNotYetValid},
		{"instance mismatch beats revoked", func(s *entitlements.LeaseState) {
			s.BoundFingerprint = "node-1"
			s.Status, s.StatusEffectiveAt = "revoked", now
		}, "node-2", verify.ReasonInstanceMismatch},
		{"not yet valid beats instance mismatch", func(s *entitlements.LeaseState) {
			s.NotBefore = now.Add(time.Second)
			s.BoundFingerprint = "node-1"
		}, "node-2", verify.ReasonNotYetValid},
		{"instance mismatch beats expired", func(s *entitlements.LeaseState) { s.BoundFingerprint = "node-1"; s.ExpiresAt = now }, "node-2", verify.ReasonInstanceMismatch},
		{"expired beats the slot limit", func(s *entitlements.LeaseState) { s.ExpiresAt = now; s.LiveSlots = 2 }, "h", verify.ReasonExpired},
		{"not yet valid", func(s *entitlements.LeaseState) { s.NotBefore = now.Add(time.Second) }, "h", verify.ReasonNotYetValid},
		{"expired at the second", func(s *entitlements.LeaseState) { s.ExpiresAt = now }, "h", verify.ReasonExpired},
		{"bound elsewhere", func(s *entitlements.LeaseState) { s.BoundFingerprint = "node-1" }, "node-2", verify.ReasonInstanceMismatch},
		{"bound here", func(s *entitlements.LeaseState) { s.BoundFingerprint = "node-1" }, "node-1", ""},
		{"limit reached", func(s *entitlements.LeaseState) { s.LiveSlots = 2 }, "h", verify.ReasonLimitExceeded},
		{"zero instances", func(s *entitlements.LeaseState) { s.MaxInstances = i64(0) }, "h", verify.ReasonLimitExceeded},
		{"no limit", func(s *entitlements.LeaseState) { s.MaxInstances = nil; s.LiveSlots = 1e6 }, "h", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := base()
			c.edit(&st)
			d := Rules{}.Decide(now, []entitlements.LeaseRequest{req(c.fp)}, []entitlements.LeaseState{st})[0]
			if d.Reason != c.want {
				t.Fatalf("reason %q, want %q (%+v)", d.Reason, c.want, d)
			}
			if (c.want == "") != d.Granted() {
				t.Fatalf("outcome %s with reason %q", d.Outcome, d.Reason)
			}
		})
	}
}

func TestRenewalKeepsTheSlotAndLeaseNeverOutlivesTheLicense(t *testing.T) {
	st := base()
	st.SlotLeaseID, st.SlotExpiresAt, st.LiveSlots = "lea_OLD", now.Add(time.Minute), 2
	d := Rules{}.Decide(now, []entitlements.LeaseRequest{req("h")}, []entitlements.LeaseState{st})[0]
	if d.Outcome != OutcomeRenewed || d.LeaseID != "lea_OLD" || !d.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("renewal at the limit: %+v", d)
	}
	st.ExpiresAt = now.Add(10 * time.Minute)
	d = Rules{}.Decide(now, []entitlements.LeaseRequest{req("h")}, []entitlements.LeaseState{st})[0]
	if !d.ExpiresAt.Equal(st.ExpiresAt) {
		t.Fatalf("lease ends %s, after its license (%s)", d.ExpiresAt, st.ExpiresAt)
	}
	// An expired or released slot is not renewed: the host needs a new one.
	for _, edit := range []func(*entitlements.LeaseState){
		func(s *entitlements.LeaseState) { s.SlotExpiresAt = now },
		func(s *entitlements.LeaseState) { s.SlotReleased = true },
	} {
		st := base()
		st.SlotLeaseID, st.SlotExpiresAt = "lea_OLD", now.Add(time.Minute)
		edit(&st)
		if d := (Rules{}).Decide(now, []entitlements.LeaseRequest{req("h")}, []entitlements.LeaseState{st})[0]; d.Outcome != OutcomeGranted || d.LeaseID != "lea_NEW_h" {
			t.Fatalf("dead slot: %+v", d)
		}
	}
}

// TestABatchCountsWhatItGrants: new hosts in one batch share the live count; a host
// asking twice renews its own first grant.
func TestABatchCountsWhatItGrants(t *testing.T) {
	st := base()
	st.LiveSlots = 1
	reqs := []entitlements.LeaseRequest{req("a"), req("a"), req("b"), req("c")}
	ds := Rules{}.Decide(now, reqs, []entitlements.LeaseState{st, st, st, st})
	got := []string{ds[0].Outcome, ds[1].Outcome, ds[2].Outcome, ds[3].Reason}
	want := []string{OutcomeGranted, OutcomeRenewed, OutcomeRefused, verify.ReasonLimitExceeded}
	for i := range want[:3] {
		if got[i] != want[i] {
			t.Fatalf("outcomes %v, want %v", got, want)
		}
	}
	if got[3] != want[3] || ds[1].LeaseID != ds[0].LeaseID {
		t.Fatalf("outcomes %v (lease IDs %s, %s)", got, ds[0].LeaseID, ds[1].LeaseID)
	}
}

// TestSharedLockOnlyRenews: under the shared lock a new slot is never taken (it would
// race the exclusive count): it is sent back to retry; renewals and refusals proceed.
func TestSharedLockOnlyRenews(t *testing.T) {
	shared := base()
	shared.Exclusive = false
	renew := shared
	renew.SlotLeaseID, renew.SlotExpiresAt = "lea_OLD", now.Add(time.Minute)
	revoked := shared
	revoked.Status, revoked.StatusEffectiveAt = "revoked", now
	ds := Rules{}.Decide(now, []entitlements.LeaseRequest{req("new"), req("old"), req("r")}, []entitlements.LeaseState{shared, renew, revoked})
	if ds[0].Outcome != OutcomeRetry || ds[1].Outcome != OutcomeRenewed || ds[2].Reason != verify.ReasonRevoked {
		t.Fatalf("shared-lock batch: %s %s %s", ds[0].Outcome, ds[1].Outcome, ds[2].Reason)
	}
	if (Rules{}).NeedsCount(now, &entitlements.LeaseRequest{}, &shared) {
		t.Fatal("a shared-lock batch asked for a slot count")
	}
	excl := base()
	if !(Rules{}).NeedsCount(now, &entitlements.LeaseRequest{}, &excl) {
		t.Fatal("an exclusive new-slot request did not ask for a slot count")
	}
}

// TestRateLimitAfterAuthentication: the rate limit is asked only for authenticated
// requests, keyed by their license, and comes before any other answer.
func TestRateLimitAfterAuthentication(t *testing.T) {
	var asked []string
	rules := Rules{Admit: func(lic string, _ time.Time) time.Duration {
		asked = append(asked, lic)
		return 3 * time.Second
	}}
	bad := base()
	bad.TokenOK = false
	revoked := base()
	revoked.Status, revoked.StatusEffectiveAt = "revoked", now
	ds := rules.Decide(now, []entitlements.LeaseRequest{req("a"), req("b"), req("c")}, []entitlements.LeaseState{bad, revoked, base()})
	if ds[0].Reason != reasonUnauthorized || len(asked) != 2 {
		t.Fatalf("an unauthenticated request was rate limited or counted: %+v, asked %v", ds[0], asked)
	}
	for _, d := range ds[1:] {
		if d.Outcome != OutcomeLimited || d.RetryAfter != 3*time.Second || d.Granted() {
			t.Fatalf("not limited: %+v", d)
		}
	}
}

// TestNoUsableKeyGrantsNothing: without a lease key that may sign now (none active,
// or past its not_after by the batch's clock), nothing is granted.
func TestNoUsableKeyGrantsNothing(t *testing.T) {
	st := base()
	st.LeaseKeyID = ""
	d := Rules{}.Decide(now, []entitlements.LeaseRequest{req("h")}, []entitlements.LeaseState{st})[0]
	if d.Outcome != OutcomeNoKey || d.Granted() {
		t.Fatalf("%+v", d)
	}
	st = base()
	if d := (Rules{}).Decide(now, []entitlements.LeaseRequest{req("h")}, []entitlements.LeaseState{st})[0]; d.KeyID != "kid-lease" {
		t.Fatalf("the decision does not name the key that must sign it: %+v", d)
	}
}

// TestQuarantineAfterRecoveryRefusesNewSlots: after `issuer recover`, until the
// license's lease TTL has passed, no host takes a new slot (this database may have
// forgotten leases granted after its backup), while a host whose slot it knows still
// renews; unlimited licenses are not held back.
func TestQuarantineAfterRecoveryRefusesNewSlots(t *testing.T) {
	st := base()
	st.QuarantineUntil = now.Add(time.Minute)
	d := Rules{}.Decide(now, []entitlements.LeaseRequest{req("new")}, []entitlements.LeaseState{st})
	if d[0].Outcome != OutcomeRefused || d[0].Reason != verify.ReasonLimitExceeded {
		t.Fatalf("new host in quarantine: %+v", d[0])
	}
	held := st
	held.SlotLeaseID, held.SlotExpiresAt = "lea_OLD", now.Add(time.Minute)
	if d := (Rules{}).Decide(now, []entitlements.LeaseRequest{req("old")}, []entitlements.LeaseState{held}); d[0].Outcome != OutcomeRenewed {
		t.Fatalf("known host in quarantine: %+v", d[0])
	}
	unlimited := st
	unlimited.MaxInstances = nil
	if d := (Rules{}).Decide(now, []entitlements.LeaseRequest{req("new")}, []entitlements.LeaseState{unlimited}); d[0].Outcome != OutcomeGranted {
		t.Fatalf("unlimited license in quarantine: %+v", d[0])
	}
	over := st
	over.QuarantineUntil = now
	if d := (Rules{}).Decide(now, []entitlements.LeaseRequest{req("new")}, []entitlements.LeaseState{over}); d[0].Outcome != OutcomeGranted {
		t.Fatalf("after the quarantine: %+v", d[0])
	}
}
