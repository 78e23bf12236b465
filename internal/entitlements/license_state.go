package entitlements

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Phases of a license at a moment: the one status truth that the console, the portal,
// the customer API and the CLI all show (docs/lifecycle.md, "Status").
const (
	PhaseActive     = "active"     // serving, nothing ahead
	PhaseChangeover = "changeover" // replaced by a successor; keeps serving until Until
	PhaseSuperseded = "superseded" // replaced, and its changeover is over
	PhaseSuspended  = "suspended"
	PhaseRevoked    = "revoked"
	PhaseExpired    = "expired"
	// PhaseEnding: a revocation or suspension decided to take effect at Until.
	PhaseEnding = "ending"
	// PhaseNotYetValid: issued, but before its not_before.
	PhaseNotYetValid = "not-yet-valid"
)

// LicenseState is what a license is at one moment, derived from its row in exactly
// one place (StateAt).
type LicenseState struct {
	Phase string
	// Status is the customer API's status (customer-api.md v1.1): active, suspended,
	// revoked, superseded or expired. A license with an issued successor is superseded
	// from that moment; revoked wins over everything.
	Status string
	// Serving: the license still verifies (as far as the issuer's records go) now.
	Serving bool
	// Until is when a serving license stops: the end of its changeover or the time a
	// decided revocation or suspension takes effect; zero when nothing is ahead but
	// expiry.
	Until time.Time
	// ReplacedBy is the successor's ID for a superseded license.
	ReplacedBy string
	// Reason is the status reason (why it was revoked, suspended, replaced).
	Reason string
}

// StateAt derives a license's state at now from its stored status.
func (l *License) StateAt(now time.Time) LicenseState {
	st := LicenseState{Reason: l.StatusReason, ReplacedBy: l.SupersededBy}
	ahead := !l.StatusEffectiveAt.IsZero() && l.StatusEffectiveAt.After(now)
	expired := !l.ExpiresAt.After(now)
	switch l.Status {
	case LicenseRevoked, LicenseSuspended:
		st.Status = l.Status
		switch {
		case ahead && !expired:
			st.Phase, st.Serving, st.Until = PhaseEnding, true, l.StatusEffectiveAt
		default:
			st.Phase = l.Status
		}
	case LicenseSuperseded:
		st.Status = LicenseSuperseded
		switch {
		case ahead && !expired:
			st.Phase, st.Serving, st.Until = PhaseChangeover, true, l.StatusEffectiveAt
		default:
			st.Phase = PhaseSuperseded
		}
	default:
		switch {
		case expired:
			st.Phase, st.Status = PhaseExpired, "expired"
		case now.Before(l.NotBefore):
			st.Phase, st.Status = PhaseNotYetValid, LicenseActive
		default:
			st.Phase, st.Status, st.Serving = PhaseActive, LicenseActive, true
		}
	}
	return st
}

// Label says the state in a few words for people, e.g. "in changeover until
// 2026-12-04 10:00 UTC, replaced by lic_…".
func (s LicenseState) Label() string {
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
	switch s.Phase {
	case PhaseChangeover:
		return fmt.Sprintf("in changeover until %s, replaced by %s", day(s.Until), s.ReplacedBy)
	case PhaseSuperseded:
		if s.ReplacedBy == "" {
			return "superseded"
		}
		return "superseded by " + s.ReplacedBy
	case PhaseEnding:
		return fmt.Sprintf("%s from %s", s.Status, day(s.Until))
	case PhaseNotYetValid:
		return "not yet valid"
	}
	return s.Phase
}

// Installable reports whether a customer may be told to install the license now: it
// serves, and is neither replaced nor about to be blocked.
func (s LicenseState) Installable() bool { return s.Phase == PhaseActive }

// InChangeover reports whether a superseded license still serves at t: its
// supersession is decided but not yet in effect.
func (l *License) InChangeover(t time.Time) bool {
	return l.Status == LicenseSuperseded && l.StatusEffectiveAt.After(t)
}

// ChainToBlock applies the chain rule (docs/lifecycle.md, "Chain revocation"): when a
// license is revoked or suspended at t, each predecessor still inside its changeover
// at t is blocked with it, from the nearest back to the first one whose changeover is
// over. predecessors is the supersedes chain of the license, nearest first, as far
// as it is known.
func ChainToBlock(predecessors []*License, t time.Time) []*License {
	var out []*License
	for _, p := range predecessors {
		if !p.InChangeover(t) {
			break
		}
		out = append(out, p)
	}
	return out
}

// InstallAdvice is what the portal tells a customer about one line of licenses (a
// license and the renewals, replacements and top-ups that followed it): the license
// to install now, or why there is none.
type InstallAdvice struct {
	Product string
	// Head is the newest license of the line.
	Head *License
	// Install is the license to install now; nil when none may be.
	Install *License
	// Why explains the advice in a sentence (always set).
	Why string
}

// staleLine is how long after its newest license expired a line stops being shown.
const staleLine = 30 * 24 * time.Hour

// AdviseInstall says, for each line of a customer's licenses, the one license to
// install now: the newest of the line, when it serves and is neither replaced nor
// about to be blocked. It never names a revoked, suspended or superseded license;
// when a line has none, Why says what happened to it. Lines whose newest license
// expired long ago, and the revoked or suspended successor of a restored license,
// are left out. The result is ordered by product, newest line first.
func AdviseInstall(licenses []*License, now time.Time) []InstallAdvice {
	byID := map[string]*License{}
	for _, l := range licenses {
		byID[l.ID] = l
	}
	var out []InstallAdvice
	for _, l := range licenses {
		if next := byID[l.SupersededBy]; l.SupersededBy != "" && next != nil {
			continue // not the newest of its line
		}
		st := l.StateAt(now)
		if l.SupersessionLifted && !st.Installable() {
			continue // a dead branch: the license it replaced was restored
		}
		if st.Phase == PhaseExpired && now.Sub(l.ExpiresAt) > staleLine {
			continue
		}
		a := InstallAdvice{Product: l.Product, Head: l}
		if st.Installable() {
			a.Install = l
			a.Why = fmt.Sprintf("Active until %s.", l.ExpiresAt.UTC().Format("2006-01-02"))
		} else {
			a.Why = noInstallWhy(l, byID, now)
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b InstallAdvice) int {
		if c := strings.Compare(a.Product, b.Product); c != 0 {
			return c
		}
		return b.Head.IssuedAt.Compare(a.Head.IssuedAt)
	})
	return out
}

// noInstallWhy explains why no license of a product can be installed, starting from
// the newest one and following what it replaced while those still serve.
func noInstallWhy(latest *License, byID map[string]*License, now time.Time) string {
	st := latest.StateAt(now)
	why := fmt.Sprintf("%s (%s) is %s", latest.ID, latest.SKU, st.Label())
	if st.Reason != "" && (st.Status == LicenseRevoked || st.Status == LicenseSuspended) {
		why += " (" + st.Reason + ")"
	}
	why += "."
	if st.Phase == PhaseNotYetValid {
		why = fmt.Sprintf("%s (%s) becomes valid on %s: install it then.", latest.ID, latest.SKU, latest.NotBefore.UTC().Format("2006-01-02 15:04 UTC"))
	}
	for p := byID[latest.Supersedes]; p != nil; p = byID[p.Supersedes] {
		ps := p.StateAt(now)
		if ps.Serving {
			why += fmt.Sprintf(" %s (%s), which it replaced, keeps working until %s but is not to be installed anew.", p.ID, p.SKU,
				ps.Until.UTC().Format("2006-01-02 15:04 UTC"))
		} else if ps.Phase == PhaseSuspended || ps.Phase == PhaseRevoked {
			why += fmt.Sprintf(" %s (%s), which it replaced, is %s too.", p.ID, p.SKU, ps.Phase)
		}
		if !ps.Serving {
			break
		}
	}
	return why + " Contact Metrum support."
}

// CanRestorePrevious applies the rule for lifting a successor's supersession (the
// staff queue's "restore the previous license" after a refund or dispute): approver
// role and a reason; the successor is suspended or revoked, so it no longer serves;
// the previous license was replaced by it, is not revoked (a revocation is final) and
// has not expired.
func CanRestorePrevious(succ, prev *License, now time.Time, by *Staff, reason string) error {
	if err := Require(by, RoleApprover, "restoring a previous license"); err != nil {
		return err
	}
	if len(reason) == 0 || len(reason) > 200 {
		return Invalid(map[string]string{"reason": "a reason of 1 to 200 characters is required"})
	}
	if prev == nil || succ.SupersessionLifted {
		return Errorf(ECONFLICT, "license %s replaced no license that could be restored", succ.ID)
	}
	if succ.Status != LicenseSuspended && succ.Status != LicenseRevoked {
		return Errorf(ECONFLICT, "license %s is %s: suspend or revoke it before restoring the license it replaced", succ.ID, succ.Status)
	}
	if prev.SupersededBy != succ.ID {
		return Errorf(ECONFLICT, "license %s is not superseded by %s", prev.ID, succ.ID)
	}
	if prev.Status == LicenseRevoked {
		return Errorf(ECONFLICT, "license %s is revoked, and a revocation is final", prev.ID)
	}
	if !prev.ExpiresAt.After(now) {
		return Errorf(ECONFLICT, "license %s has expired: renew it instead", prev.ID)
	}
	return nil
}

// DaysLeft is what the portal shows beside an expiry.
func DaysLeft(l *License, now time.Time) string {
	d := l.ExpiresAt.Sub(now)
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d <= 0:
		return "expired"
	case d < 24*time.Hour:
		return plural(int((d+time.Hour-1)/time.Hour), "hour") // whole hours, rounded up
	}
	// Whole days, to the nearest: a 365-day license issued a minute ago has 365 days
	// left, not 364.
	return plural(int((d+12*time.Hour)/(24*time.Hour)), "day")
}

// CanOpenSuccessor applies the rule for opening a renewal, replacement or top-up of
// l at now, by its state (StateAt): only a license in phase active or not-yet-valid
// can be replaced or topped up, and one that has also expired can still be renewed;
// a suspended, revoked or superseded one (or one in its changeover, or with a
// revocation ahead) can't. One open successor at a time is the database's rule.
func (l *License) CanOpenSuccessor(kind string, now time.Time) error {
	if kind != KindRenewal && kind != KindReplacement && kind != KindTopUp {
		return Invalid(map[string]string{"kind": "renewal, replacement or top-up"})
	}
	if l.Status == LicenseSuspended {
		// Issuing a successor would mark it superseded with a changeover, which would
		// quietly lift the suspension for that long.
		return Errorf(ECONFLICT, "license %s is suspended (%s): reinstate it first, then renew, replace or top it up", l.ID, l.StatusReason)
	}
	st := l.StateAt(now)
	switch {
	case l.SupersededBy != "":
	case st.Phase == PhaseActive || st.Phase == PhaseNotYetValid:
		return nil
	case st.Phase == PhaseExpired:
		switch kind {
		case KindRenewal:
			return nil
		case KindTopUp:
			return Errorf(ECONFLICT, "license %s has expired: renew it, then top up", l.ID)
		}
		return Errorf(ECONFLICT, "license %s has expired: renew it instead", l.ID)
	}
	return Errorf(ECONFLICT, "license %s is %s and can't be renewed, replaced or topped up", l.ID, st.Label())
}

// OpenSuccessorConflict is the refusal of a second renewal, replacement or top-up of
// a license while open is (nil: not known which), naming and carrying the open one.
func OpenSuccessorConflict(licenseID string, open *Entitlement) *Error {
	if open == nil {
		return Errorf(ECONFLICT, "license %s already has an open renewal, replacement or top-up: issue, reject or cancel it first", licenseID)
	}
	de := Errorf(ECONFLICT, "license %s already has an open %s, %s (%s): issue, reject or cancel it first", licenseID, open.Kind, open.ID, open.State)
	de.Conflict = open.ID
	return de
}
