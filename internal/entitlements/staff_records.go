package entitlements

import "time"

// CustomerTokenPrefix starts every customer API token, so a leaked one is easy to
// recognise (secret scanners, logs) and to tell from a lease token.
const CustomerTokenPrefix = "mct_"

// ErrBadCustomerToken is the one answer for a missing, unknown, expired or revoked
// customer API token.
var ErrBadCustomerToken = Errorf(EUNAUTHORIZED, "bad, expired or revoked customer API token")

// EntitlementFilter narrows an entitlement list.
type EntitlementFilter struct {
	State      string
	Kind       string
	CustomerID string
	// BeforeID pages: entitlements created before this one (IDs are ULIDs, so time-ordered).
	BeforeID string
	Limit    int
	// Text matches a customer's name or the contract reference (a case-insensitive
	// substring), or an entitlement, customer or license ID (exactly).
	Text string
	// Sort orders the list by one of EntitlementSorts (zero: newest first, paged by
	// BeforeID); After is then the previous page's last entitlement ID.
	Sort  Sort
	After string
}

// EvaluationRequest is a new visitor's request for a free evaluation.
type EvaluationRequest struct {
	Email, Company string
}

// Portal sign-in and session lifetimes (issue 13: as for staff).
const (
	SignInLinkTTL     = 15 * time.Minute
	PortalIdleTTL     = 30 * time.Minute
	PortalAbsoluteTTL = 12 * time.Hour
)

// BootstrapActor creates the first staff account: CreateStaff with it succeeds only
// while there is no account at all.
const BootstrapActor = "bootstrap"

// Staff session lifetimes: absolute from sign-in, idle since the last request.
const (
	SessionTTL     = 12 * time.Hour
	SessionIdleTTL = 30 * time.Minute
)

// StaffSession is one of a staff member's live sessions.
type StaffSession struct {
	ID         int64
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	ClientAddr string
	Current    bool
}

// StaffAccount is a staff account as the accounts page shows it.
type StaffAccount struct {
	Staff
	Disabled bool
}

// StaffTokenPrefix starts every staff personal access token.
const StaffTokenPrefix = "mst_"

// StaffToken is a personal access token's record (never the token).
type StaffToken struct {
	ID         string
	StaffID    int64
	Email      string
	Name       string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// ErrBadStaffToken is the one answer for a missing, unknown, expired or revoked staff
// token.
var ErrBadStaffToken = Errorf(EUNAUTHORIZED, "bad, expired or revoked staff token: sign in again with `issuer login`")
