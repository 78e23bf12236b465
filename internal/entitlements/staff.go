package entitlements

import (
	"strings"
	"time"
)

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
	// MustChangePassword: an admin set the password (a new account's first, or a
	// reset); the console asks for a new one before anything else.
	MustChangePassword bool `json:",omitempty"`
}

// System is the actor of work the issuer does by itself (scheduled re-publishing).
var System = &Staff{Email: "system", Name: "system", Role: RoleAdmin}

// MinPasswordLength is the shortest staff password accepted.
const MinPasswordLength = 12

// ValidatePassword checks a new staff password.
func ValidatePassword(pw string) error {
	if len(pw) < MinPasswordLength {
		return Invalid(map[string]string{"password": "at least 12 characters"})
	}
	return nil
}

// ValidateNewStaff normalises and checks a new staff account and its first password.
func ValidateNewStaff(st *Staff, password string) error {
	st.Email = strings.ToLower(strings.TrimSpace(st.Email))
	st.Name = strings.TrimSpace(st.Name)
	f := map[string]string{}
	if at := strings.Index(st.Email, "@"); at < 1 || at == len(st.Email)-1 || len(st.Email) > 254 {
		f["email"] = "not an email address"
	}
	if len(st.Name) > 200 || !OneLine(st.Name) {
		f["name"] = "one line of at most 200 characters"
	}
	if !OneLine(st.Email) {
		f["email"] = "not an email address"
	}
	if !st.Role.Valid() {
		f["role"] = "viewer, issuer, approver or admin"
	}
	if len(password) < MinPasswordLength {
		f["password"] = "at least 12 characters"
	}
	return Invalid(f)
}

// ValidateBootstrap checks the very first staff account, which the operator makes on
// the issuer's host: it must be an admin, so someone can make the others.
func ValidateBootstrap(st *Staff, password string) error {
	if err := ValidateNewStaff(st, password); err != nil {
		return err
	}
	if Require(st, RoleAdmin, "") != nil {
		return Invalid(map[string]string{"role": "the first account must be an admin"})
	}
	return nil
}

// CheckAdminsRemain is the rule that some enabled admin always remains after a
// change (n: how many there would be): without one, nobody could manage keys or
// accounts, and only the operator's recovery gets back in.
func CheckAdminsRemain(n int) error {
	if n < 1 {
		return Errorf(ECONFLICT, "no enabled admin would remain: make another account an admin first")
	}
	return nil
}
