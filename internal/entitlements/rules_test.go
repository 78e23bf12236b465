package entitlements

import (
	"testing"
	"time"
)

var (
	viewer   = &Staff{Email: "v@m", Role: RoleViewer}
	issuer   = &Staff{Email: "i@m", Role: RoleIssuer}
	approver = &Staff{Email: "a@m", Role: RoleApprover}
	admin    = &Staff{Email: "root@m", Role: RoleAdmin}
)

// TestStatusChangeTable is every (status, action) pair of the license status rules.
func TestStatusChangeTable(t *testing.T) {
	type cell struct{ next, code string }
	for _, c := range []struct {
		current                    string
		hasSuccessor, inChangeover bool
		revoke, suspend, reinstate cell
	}{
		{LicenseActive, false, false, cell{LicenseRevoked, ""}, cell{LicenseSuspended, ""}, cell{"", ECONFLICT}},
		{LicenseSuspended, false, false, cell{LicenseRevoked, ""}, cell{"", ECONFLICT}, cell{LicenseActive, ""}},
		{LicenseSuspended, true, false, cell{LicenseRevoked, ""}, cell{"", ECONFLICT}, cell{LicenseSuperseded, ""}},
		{LicenseSuperseded, true, true, cell{LicenseRevoked, ""}, cell{LicenseSuspended, ""}, cell{"", ECONFLICT}},
		{LicenseSuperseded, true, false, cell{LicenseRevoked, ""}, cell{"", ECONFLICT}, cell{"", ECONFLICT}},
		{LicenseRevoked, false, false, cell{"", ECONFLICT}, cell{"", ECONFLICT}, cell{"", ECONFLICT}},
	} {
		for action, want := range map[string]cell{ActionRevoke: c.revoke, ActionSuspend: c.suspend, ActionReinstate: c.reinstate} {
			next, err := CheckStatusChange(c.current, c.hasSuccessor, c.inChangeover, action, approver, "a reason")
			if next != want.next || ErrorCode(err) != want.code {
				t.Errorf("%s (successor %v, changeover %v) %s: %q %v, want %q %q", c.current, c.hasSuccessor, c.inChangeover, action, next, err, want.next, want.code)
			}
		}
	}
	for _, by := range []*Staff{nil, viewer, issuer} {
		if _, err := CheckStatusChange(LicenseActive, false, false, ActionRevoke, by, "r"); ErrorCode(err) != EFORBIDDEN {
			t.Errorf("revoke by %v: %v", by, err)
		}
	}
	for _, reason := range []string{"", string(make([]byte, 201))} {
		if _, err := CheckStatusChange(LicenseActive, false, false, ActionRevoke, admin, reason); ErrorCode(err) != EINVALID {
			t.Errorf("reason of %d bytes: %v", len(reason), err)
		}
	}
}

// TestMakerChecker: a draft is decided by an approver who did not create it (when
// maker-checker is on); a decided entitlement can't be decided again.
func TestMakerChecker(t *testing.T) {
	e := &Entitlement{ID: "ent_x", State: StateDraft, CreatedBy: approver.Email}
	if err := e.CanApprove(approver, true); ErrorCode(err) != EFORBIDDEN {
		t.Fatalf("the creator approved their own draft: %v", err)
	}
	if err := e.CanApprove(approver, false); err != nil {
		t.Fatalf("maker-checker off: %v", err)
	}
	if err := e.CanApprove(admin, true); err != nil {
		t.Fatalf("another approver: %v", err)
	}
	if err := e.CanApprove(issuer, true); ErrorCode(err) != EFORBIDDEN {
		t.Fatalf("an issuer approved: %v", err)
	}
	e.State = StateApproved
	if err := e.CanApprove(admin, true); ErrorCode(err) != ECONFLICT {
		t.Fatalf("approving an approved entitlement: %v", err)
	}
	// Cancelling: the creator or an approver, while it has not issued.
	e.State, e.CreatedBy = StateDraft, issuer.Email
	if err := e.CanCancel(issuer); err != nil {
		t.Fatalf("the creator cancels: %v", err)
	}
	if err := e.CanCancel(&Staff{Email: "other@m", Role: RoleIssuer}); ErrorCode(err) != EFORBIDDEN {
		t.Fatalf("another issuer cancels: %v", err)
	}
	e.State = StateIssued
	if err := e.CanCancel(admin); ErrorCode(err) != ECONFLICT {
		t.Fatalf("cancelling an issued entitlement: %v", err)
	}
}

// TestRequireAndPermissions: one rule for decisions and for the UI's booleans.
func TestRequireAndPermissions(t *testing.T) {
	for _, c := range []struct {
		by   *Staff
		want Permissions
	}{
		{nil, Permissions{}},
		{&Staff{Role: "intern"}, Permissions{}},
		{viewer, Permissions{View: true}},
		{issuer, Permissions{View: true, Issue: true}},
		{approver, Permissions{View: true, Issue: true, Approve: true}},
		{admin, Permissions{View: true, Issue: true, Approve: true, Admin: true}},
	} {
		if got := PermissionsOf(c.by); got != c.want {
			t.Errorf("%v: %+v, want %+v", c.by, got, c.want)
		}
		if (Require(c.by, RoleApprover, "x") == nil) != c.want.Approve {
			t.Errorf("%v: Require and PermissionsOf disagree", c.by)
		}
	}
}

// TestValidateNewStaff normalises and refuses.
func TestValidateNewStaff(t *testing.T) {
	st := &Staff{Email: "  Ops@Example.COM ", Role: RoleIssuer}
	if err := ValidateNewStaff(st, "a long enough password"); err != nil || st.Email != "ops@example.com" {
		t.Fatalf("%v %q", err, st.Email)
	}
	for name, c := range map[string]struct {
		st *Staff
		pw string
	}{
		"no @":       {&Staff{Email: "ops", Role: RoleIssuer}, "a long enough password"},
		"short":      {&Staff{Email: "a@b", Role: RoleIssuer}, "short"},
		"bad role":   {&Staff{Email: "a@b", Role: "boss"}, "a long enough password"},
		"long email": {&Staff{Email: string(make([]byte, 250)) + "@b.co", Role: RoleIssuer}, "a long enough password"},
	} {
		if err := ValidateNewStaff(c.st, c.pw); ErrorCode(err) != EINVALID {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := ValidateBootstrap(&Staff{Email: "a@b", Role: RoleApprover}, "a long enough password"); ErrorCode(err) != EINVALID {
		t.Errorf("a first account that is not an admin: %v", err)
	}
}

// TestDaysLeft counts from now, never off by one at the day boundary.
func TestDaysLeft(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{0: "expired", 3 * time.Hour: "3 hours", 48 * time.Hour: "2 days", 30*time.Hour + time.Minute: "1 day", 90 * time.Minute: "2 hours"} {
		if got := DaysLeft(&License{ExpiresAt: now.Add(d)}, now); got != want {
			t.Errorf("%s left: %q, want %q", d, got, want)
		}
	}
}
