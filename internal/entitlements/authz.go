package entitlements

// Require is the one authorization check: every action and every read of every path
// (console, staff API, CLI, the portal on a customer's behalf) names the role it
// needs here, in the service layer; the domain's Can… rules call it too. Handlers
// only hide what a role can't use, and take their booleans from Permissions.
func Require(by *Staff, role Role, what string) error {
	if by == nil || !by.Role.AtLeast(role) {
		return Errorf(EFORBIDDEN, "%s needs the %s role", what, role)
	}
	return nil
}

// Permissions are what a staff member may do, as booleans for the console to show
// or hide controls by; they are derived from Require, never re-derived.
type Permissions struct {
	View, Issue, Approve, Admin bool
}

// PermissionsOf returns the permissions of a staff member (none for nil).
func PermissionsOf(by *Staff) Permissions {
	ok := func(r Role) bool { return Require(by, r, "") == nil }
	return Permissions{View: ok(RoleViewer), Issue: ok(RoleIssuer), Approve: ok(RoleApprover), Admin: ok(RoleAdmin)}
}

// What each staff action needs. The service layer passes these to Require, so one
// table says who may do what (docs/architecture.md).
const (
	NeedRead            = RoleViewer   // every read of the console and the staff API
	NeedIssue           = RoleIssuer   // customers, entitlements, issuing, successors, portal users, customer tokens, lease tokens
	NeedApprove         = RoleApprover // approve, reject, revoke, suspend, reinstate, restore, publish bundles, order review
	NeedAdmin           = RoleAdmin    // keys, staff accounts, the staff list, audit chain verification
	NeedOwnAccount      = RoleViewer   // one's own password, sessions and personal access tokens
	NeedPortalOnBehalf  = RoleIssuer   // staff acting for a customer in the portal's service
	NeedOrderFulfilment = RoleApprover // fulfilling or refunding a queued order by hand
)
