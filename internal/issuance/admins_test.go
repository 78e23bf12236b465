package issuance_test

import (
	"context"
	"testing"

	"github.com/metrum/licensing/internal/entitlements"
)

// TestTwoAdminsCantDemoteEachOtherAtOnce: the last enabled admin can't be demoted or
// disabled, whatever the interleaving: of two admins demoting each other at the same
// instant, one wins and one is refused, and an admin remains.
func TestTwoAdminsCantDemoteEachOtherAtOnce(t *testing.T) {
	for round := range 8 {
		e := mustService(t)
		ctx := context.Background()
		a := &entitlements.Staff{Email: "a@m.test", Role: entitlements.RoleAdmin}
		b := &entitlements.Staff{Email: "b@m.test", Role: entitlements.RoleAdmin}
		for _, st := range []*entitlements.Staff{a, b} {
			if err := e.svc.CreateStaff(ctx, st, "a long enough password", admin); err != nil {
				t.Fatal(err)
			}
		}
		// The fixture's own admin account does not exist in the database: only a and b.
		viewer := entitlements.RoleViewer
		disable := true
		errs := race(2, func(i int) error {
			if i == 0 {
				return e.svc.UpdateStaff(ctx, b.ID, &viewer, nil, "", false, a)
			}
			return e.svc.UpdateStaff(ctx, a.ID, nil, &disable, "", false, b)
		})
		ok := 0
		for _, err := range errs {
			switch entitlements.ErrorCode(err) {
			case "":
				ok++
			case entitlements.ECONFLICT:
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of 2 changes went through (%v)", round, ok, errs)
		}
		if n := count(t, e, `SELECT count(*) FROM staff_users WHERE role = 'admin' AND disabled_at IS NULL`); n != 1 {
			t.Fatalf("round %d: %d enabled admins left", round, n)
		}
	}
}
