// Package staffapi is the staff JSON API's wire contract, shared by the issuer (which
// serves it under /v1/staff/) and the `issuer` CLI (its client). Every call is a POST
// of one JSON request body, authenticated by a staff personal access token
// (Authorization: Bearer mst_…), answered with one JSON body, or with an RFC 9457
// problem. Bodies are the domain types as encoding/json writes them. Bulk calls
// answer NDJSON: one Progress line per item, then a Done line.
package staffapi

import (
	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

// Prefix is where the staff API lives.
const Prefix = "/v1/staff"

// Paths of the staff API, under Prefix.
const (
	Login              = "/login" // the only call without a token
	WhoAmI             = "/whoami"
	CustomerCreate     = "/customers/create"
	CustomerUpdate     = "/customers/update"
	CustomerGet        = "/customers/get"
	CustomerList       = "/customers/list"
	EntitlementCreate  = "/entitlements/create"
	EntitlementApprove = "/entitlements/approve"
	EntitlementReject  = "/entitlements/reject"
	EntitlementCancel  = "/entitlements/cancel"
	EntitlementGet     = "/entitlements/get"
	EntitlementList    = "/entitlements/list"
	LicenseIssue       = "/licenses/issue"
	LicenseIssueAll    = "/licenses/issue-all-approved" // NDJSON
	LicenseGet         = "/licenses/get"
	LicenseDownload    = "/licenses/download" // a file of a license, recorded as staff's delivery
	LicenseList        = "/licenses/list"
	LicenseSuccessor   = "/licenses/successor"
	LicenseRenewAll    = "/licenses/renew-expiring" // NDJSON
	LicenseStatus      = "/licenses/status"
	LicenseChain       = "/licenses/status-preview"
	LicenseRestore     = "/licenses/restore-previous"
	LicenseLeaseToken  = "/licenses/rotate-lease-token"
	BundlePublish      = "/bundles/publish"
	BundleGet          = "/bundles/get"
	BundleList         = "/bundles/list"
	LeaseSlots         = "/leases/slots"
	LeaseHistory       = "/leases/history"
	AuditList          = "/audit/list"
	KeyGenerate        = "/keys/generate"
	KeyRotate          = "/keys/rotate"
	KeyActivate        = "/keys/activate"
	KeyRetire          = "/keys/retire"
	KeyNotAfter        = "/keys/not-after"
	KeyGet             = "/keys/get"
	KeyList            = "/keys/list"
	KeySet             = "/keys/keyset"
	StaffCreate        = "/staff/create"
	TokenCreate        = "/tokens/create"
	TokenList          = "/tokens/list"
	TokenRevoke        = "/tokens/revoke"
	PortalInvite       = "/portal/invite"
	PortalUsers        = "/portal/users"
	PortalDisable      = "/portal/set-disabled"
	CustomerTokenNew   = "/customer-tokens/create"
	CustomerTokenList  = "/customer-tokens/list"
	CustomerTokenDrop  = "/customer-tokens/revoke"
	CustomerDownloads  = "/customers/downloads"
	OrderQueue         = "/orders/queue"
	OrderGet           = "/orders/get"
	OrderReview        = "/orders/review"
	OrderFulfil        = "/orders/fulfil"
	OrderRefund        = "/orders/refund"
	OrderUnmatched     = "/orders/unmatched"
	JobGet             = "/jobs/get" // a bulk job's results, read again
)

// Empty is the body of a call that takes nothing.
type Empty struct{}

// ID names one record.
type ID struct{ ID string }

// Reason names one record and says why.
type Reason struct {
	ID     string
	Reason string
}

// LoginRequest trades a password for a personal access token. NewPassword, when set,
// replaces the password first (how a CLI-only member replaces the one an admin set).
type LoginRequest struct {
	Email, Password, TokenName string
	Lifetime                   time.Duration
	NewPassword                string `json:",omitempty"`
}

// TokenRequest makes a token for the caller.
type TokenRequest struct {
	Name     string
	Lifetime time.Duration
}

// NewToken is a token, shown once, and its record.
type NewToken struct {
	Token  string
	Record *entitlements.StaffToken
}

// CustomerUpdateRequest corrects a customer; empty fields keep their value.
type CustomerUpdateRequest struct{ ID, Name, Email string }

// Page pages a list by offset.
type Page struct{ Offset, Limit int }

// Issued is a license and, for a lease-required one, its lease token (shown once).
type Issued struct {
	License    *entitlements.License
	LeaseToken string
}

// IssueAllRequest issues every approved entitlement (of a customer when set).
type IssueAllRequest struct {
	CustomerID string
	Limit      int
}

// Progress is one line of a bulk call's NDJSON answer. The first line of a bulk issue
// names its job (Job, StartedAt, Of), before any item.
type Progress struct {
	N, Of      int
	Job        string    // the bulk job's ID (first line)
	StartedAt  time.Time // when the job started, on the issuer's clock (first line)
	ID         string    // the entitlement or license it is about
	License    *entitlements.License
	LeaseToken string
	Opened     *entitlements.Entitlement
	Error      string // a failure of this item; the run goes on
	Done       bool   // the last line
	Count      int    // with Done: how many succeeded
}

// RenewAllRequest opens a renewal for every active license expiring within.
type RenewAllRequest struct {
	Product string
	Within  time.Duration
}

// StatusRequest revokes, suspends or reinstates a license. Only: change this license
// alone; its predecessors in their changeover keep working until it ends.
type StatusRequest struct {
	LicenseID, Action, Reason string
	EffectiveAt               time.Time
	Only                      bool
}

// StatusResult is a changed license and the predecessors that changed with it.
type StatusResult struct {
	License *entitlements.License
	Chained []*entitlements.License
}

// RestoreRequest restores the license a refunded or disputed successor replaced.
type RestoreRequest struct{ SuccessorID, Reason string }

// Token is a secret shown once.
type Token struct{ Token string }

// BundleRequest names a bundle (Sequence 0: the latest) or pages a product's bundles.
type BundleRequest struct {
	Product  string
	Sequence int64
	Before   int64
	Limit    int
}

// LeaseRequest names a license's lease history page.
type LeaseRequest struct {
	LicenseID string
	Before    int64
	Limit     int
}

// KeyGenerateRequest makes a key.
type KeyGenerateRequest struct {
	Input    entitlements.KeyInput
	Activate bool
}

// KeyRotateRequest switches a slot to its standby.
type KeyRotateRequest struct{ Product, Purpose string }

// Rotated names the keys of a rotation.
type Rotated struct{ Next, Prev string }

// KeyNotAfterRequest moves a key's not_after.
type KeyNotAfterRequest struct {
	KID string
	At  time.Time
}

// KeySetAnswer is the exported public key set.
type KeySetAnswer struct{ KeySet []byte }

// KeySetRequest names the product whose keys to export ("" = every product).
type KeySetRequest struct{ Product string }

// StaffCreateRequest adds a staff account.
type StaffCreateRequest struct {
	Email, Name, Role, Password string
}

// PortalInviteRequest invites a person to a customer's portal.
type PortalInviteRequest struct{ CustomerID, Email, Name string }

// PortalUserRequest names a customer's portal user.
type PortalUserRequest struct {
	CustomerID string
	ID         int64
	Disabled   bool
}

// CustomerTokenRequest makes, lists or revokes a customer's API tokens.
type CustomerTokenRequest struct {
	CustomerID, Name, ID string
	Lifetime             time.Duration
}

// NewCustomerToken is a customer API token, shown once, and its record.
type NewCustomerToken struct {
	Token  string
	Record *entitlements.CustomerToken
}

// ReviewRequest takes an order out of the staff queue.
type ReviewRequest struct{ ID, Note string }

// DownloadRequest names a license's file: file, summary or checklist.
type DownloadRequest struct{ ID, What string }

// FulfilRequest fulfils a held order by hand, optionally for another license of the
// customer.
type FulfilRequest struct{ ID, LicenseID, Note string }

// Fulfilled is what a fulfilment by hand issued.
type Fulfilled struct {
	Order   *entitlements.Order
	License *entitlements.License
}

// Rotated lease token, and other single values, reuse Token.
var _ = Token{}
