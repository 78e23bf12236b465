package entitlements

import "time"

// Role is a staff role; each includes the ones before it.
type Role string

// Staff roles, least to most.
const (
	RoleViewer   Role = "viewer"
	RoleIssuer   Role = "issuer"
	RoleApprover Role = "approver"
	RoleAdmin    Role = "admin"
)

var roleRank = map[Role]int{RoleViewer: 1, RoleIssuer: 2, RoleApprover: 3, RoleAdmin: 4}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return roleRank[r] > 0 }

// AtLeast reports whether r includes the rights of min.
func (r Role) AtLeast(min Role) bool { return roleRank[r] >= roleRank[min] && roleRank[r] > 0 }

// Staff is a vendor employee using the admin UI or CLI.
type Staff struct {
	ID        int64
	Email     string
	Name      string
	Role      Role
	CreatedAt time.Time
}

// System is the actor of work the issuer does by itself (scheduled re-publishing).
var System = &Staff{Email: "system", Name: "system", Role: RoleAdmin}
