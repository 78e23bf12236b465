package entitlements

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func lic(id, sku, status string, eff time.Time, supersedes, by string) *License {
	return &License{ID: id, SKU: sku, Product: "genai-smart-router", Status: status, StatusEffectiveAt: eff,
		Supersedes: supersedes, SupersededBy: by, IssuedAt: t0.Add(-time.Duration(len(supersedes)) * time.Hour),
		NotBefore: t0.Add(-48 * time.Hour), ExpiresAt: t0.Add(365 * 24 * time.Hour)}
}

// TestStateAt is the one status truth, row by row.
func TestStateAt(t *testing.T) {
	var zero time.Time
	for _, c := range []struct {
		name          string
		l             *License
		phase, status string
		serving       bool
	}{
		{"active", lic("a", "x", LicenseActive, zero, "", ""), PhaseActive, LicenseActive, true},
		{"changeover", lic("a", "x", LicenseSuperseded, t0.Add(time.Hour), "", "b"), PhaseChangeover, LicenseSuperseded, true},
		{"superseded", lic("a", "x", LicenseSuperseded, t0.Add(-time.Hour), "", "b"), PhaseSuperseded, LicenseSuperseded, false},
		{"suspended", lic("a", "x", LicenseSuspended, t0.Add(-time.Hour), "", ""), PhaseSuspended, LicenseSuspended, false},
		{"revoked", lic("a", "x", LicenseRevoked, t0, "", ""), PhaseRevoked, LicenseRevoked, false},
		{"revocation ahead", lic("a", "x", LicenseRevoked, t0.Add(time.Hour), "", ""), PhaseEnding, LicenseRevoked, true},
		{"expired", func() *License { l := lic("a", "x", LicenseActive, zero, "", ""); l.ExpiresAt = t0; return l }(), PhaseExpired, "expired", false},
		{"not yet valid", func() *License {
			l := lic("a", "x", LicenseActive, zero, "", "")
			l.NotBefore = t0.Add(time.Hour)
			return l
		}(), PhaseNotYetValid, LicenseActive, false},
		{"revoked and expired", func() *License {
			l := lic("a", "x", LicenseRevoked, t0.Add(time.Hour), "", "")
			l.ExpiresAt = t0
			return l
		}(), PhaseRevoked, LicenseRevoked, false},
	} {
		st := c.l.StateAt(t0)
		if st.Phase != c.phase || st.Status != c.status || st.Serving != c.serving {
			t.Errorf("%s: %+v, want %s/%s serving=%v", c.name, st, c.phase, c.status, c.serving)
		}
	}
}

// TestChainToBlock follows predecessors while each is inside its changeover.
func TestChainToBlock(t *testing.T) {
	in := lic("r", "renewal", LicenseSuperseded, t0.Add(time.Hour), "o", "t")
	orig := lic("o", "orig", LicenseSuperseded, t0.Add(time.Minute), "", "r")
	over := lic("o", "orig", LicenseSuperseded, t0.Add(-time.Minute), "", "r")
	older := lic("p", "older", LicenseSuperseded, t0.Add(time.Hour), "", "o")
	if got := ChainToBlock([]*License{in, orig}, t0); len(got) != 2 {
		t.Fatalf("both in changeover: %d", len(got))
	}
	if got := ChainToBlock([]*License{in, over, older}, t0); len(got) != 1 || got[0] != in {
		t.Fatalf("stops at the first whose changeover is over: %v", got)
	}
	if got := ChainToBlock(nil, t0); len(got) != 0 {
		t.Fatal("no predecessors")
	}
}

// TestAdviseInstall never names a revoked, suspended or superseded license, says why
// when a line has none, and gives each line of licenses its own advice.
func TestAdviseInstall(t *testing.T) {
	orig := lic("lic_o", "enterprise-annual", LicenseSuperseded, t0.Add(-time.Hour), "", "lic_r")
	renewal := lic("lic_r", "enterprise-annual", LicenseSuperseded, t0.Add(time.Hour), "lic_o", "lic_t")
	topUp := lic("lic_t", "credit-pack-5m", LicenseRevoked, t0.Add(-time.Minute), "lic_r", "")
	topUp.StatusReason = "chargeback"
	orig.IssuedAt, renewal.IssuedAt, topUp.IssuedAt = t0.Add(-48*time.Hour), t0.Add(-24*time.Hour), t0.Add(-time.Hour)
	pilot := lic("lic_p", "pilot-30d", LicenseActive, time.Time{}, "", "")
	pilot.IssuedAt = t0.Add(-2 * time.Hour)
	old := lic("lic_x", "eval-72h", LicenseActive, time.Time{}, "", "")
	old.ExpiresAt = t0.Add(-60 * 24 * time.Hour)

	got := AdviseInstall([]*License{orig, renewal, topUp, pilot, old}, t0)
	if len(got) != 2 {
		t.Fatalf("%d lines, want 2 (the revoked chain and the pilot; the long-expired evaluation left out): %+v", len(got), got)
	}
	chain, other := got[0], got[1]
	if chain.Head != topUp || chain.Install != nil {
		t.Fatalf("the revoked chain: %+v", chain)
	}
	for _, want := range []string{"lic_t", "revoked", "chargeback", "lic_r", "keeps working until"} {
		if !strings.Contains(chain.Why, want) {
			t.Errorf("why %q lacks %q", chain.Why, want)
		}
	}
	if other.Install != pilot {
		t.Fatalf("the pilot's line: %+v", other)
	}
	topUp.Status, topUp.StatusEffectiveAt = LicenseActive, time.Time{}
	if got := AdviseInstall([]*License{orig, renewal, topUp}, t0); len(got) != 1 || got[0].Install != topUp {
		t.Fatalf("an active top-up is the one to install: %+v", got)
	}
	// A restored license: its revoked successor is a dead branch, not a line.
	topUp.Status, topUp.SupersessionLifted = LicenseRevoked, true
	renewal.Status, renewal.SupersededBy, renewal.StatusEffectiveAt = LicenseActive, "", time.Time{}
	if got := AdviseInstall([]*License{orig, renewal, topUp}, t0); len(got) != 1 || got[0].Install != renewal {
		t.Fatalf("after restoring the renewal: %+v", got)
	}
}

// TestCanRestorePrevious: the rule's refusals.
func TestCanRestorePrevious(t *testing.T) {
	approver := &Staff{Email: "a@x", Role: RoleApprover}
	prev := lic("lic_r", "x", LicenseSuperseded, t0, "", "lic_t")
	succ := lic("lic_t", "y", LicenseSuspended, t0, "lic_r", "")
	if err := CanRestorePrevious(succ, prev, t0, approver, "refund"); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() (string, error){
		"issuer role": func() (string, error) {
			return EFORBIDDEN, CanRestorePrevious(succ, prev, t0, &Staff{Role: RoleIssuer}, "r")
		},
		"no reason": func() (string, error) { return EINVALID, CanRestorePrevious(succ, prev, t0, approver, "") },
		"successor active": func() (string, error) {
			s := *succ
			s.Status = LicenseActive
			return ECONFLICT, CanRestorePrevious(&s, prev, t0, approver, "r")
		},
		"no predecessor": func() (string, error) { return ECONFLICT, CanRestorePrevious(succ, nil, t0, approver, "r") },
		"revoked predecessor": func() (string, error) {
			p := *prev
			p.Status = LicenseRevoked
			return ECONFLICT, CanRestorePrevious(succ, &p, t0, approver, "r")
		},
		"expired predecessor": func() (string, error) {
			p := *prev
			p.ExpiresAt = t0
			return ECONFLICT, CanRestorePrevious(succ, &p, t0, approver, "r")
		},
		"already lifted": func() (string, error) {
			s := *succ
			s.SupersessionLifted = true
			return ECONFLICT, CanRestorePrevious(&s, prev, t0, approver, "r")
		},
	} {
		if want, err := f(); ErrorCode(err) != want {
			t.Errorf("%s: %v, want %s", name, err, want)
		}
	}
}
