// Package entitlements holds the domain of the license issuer: customers, entitlement
// records and their lifecycle, licenses, staff and their roles, and the one error type.
// It imports no HTTP, SQL or signing code.
package entitlements

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
)

// ID prefixes: every identifier is a prefix and a ULID.
const (
	PrefixCustomer    = "cus_"
	PrefixEntitlement = "ent_"
	PrefixLicense     = "lic_"
	PrefixLease       = "lea_"
)

// NewID returns prefix + a new ULID (monotonic within a millisecond, crypto/rand).
func NewID(prefix string) string { return prefix + ulid.Make().String() }

var idRe = regexp.MustCompile(`^(cus|ent|lic|lea|ctk|ord|stk|job)_[0-7][0-9A-HJKMNP-TV-Z]{25}$`)

// ValidID reports whether s is prefix + ULID.
func ValidID(prefix, s string) bool { return strings.HasPrefix(s, prefix) && idRe.MatchString(s) }

// Customer is a licensee.
type Customer struct {
	ID        string
	Name      string
	Email     string
	CreatedAt time.Time
}

// Validate checks a new customer.
func (c *Customer) Validate() error {
	f := map[string]string{}
	c.Name = strings.TrimSpace(c.Name)
	c.Email = strings.ToLower(strings.TrimSpace(c.Email))
	if c.Name == "" || len(c.Name) > 200 {
		f["name"] = "a name of 1 to 200 characters is required"
	} else if !OneLine(c.Name) {
		f["name"] = "a name is one line of text, without control characters"
	}
	if c.Email != "" && (!strings.Contains(c.Email, "@") || len(c.Email) > 254) {
		f["email"] = "not an email address"
	}
	return Invalid(f)
}

// Entitlement states.
const (
	StateDraft     = "draft"
	StateApproved  = "approved"
	StateRejected  = "rejected"
	StateCancelled = "cancelled"
	StateIssued    = "issued"
)

// Entitlement sources.
const (
	SourceStaff       = "staff"
	SourceSelfService = "self-service"
	SourceMarketplace = "marketplace"
)

// Entitlement kinds: what the license it issues does to the one before.
const (
	KindNew         = "new"
	KindRenewal     = "renewal"
	KindReplacement = "replacement"
	KindTopUp       = "top-up"
)

// Overrides are the per-entitlement changes to a template's defaults, within what the
// template allows.
type Overrides struct {
	Features           []string         `json:"features,omitempty"`
	Limits             map[string]int64 `json:"limits,omitempty"`
	GracePeriodSeconds *int64           `json:"grace_period_seconds,omitempty"`
}

// Terms are what a license grants: its features, limits, grace, instance binding and
// lease policy. They are stored with each license (so a top-up can carry them over and
// the lease API can enforce them) and are exactly what its payload says.
type Terms struct {
	Features            []string         `json:"features"`
	Limits              map[string]int64 `json:"limits"`
	GracePeriodSeconds  int64            `json:"grace_period_seconds"`
	InstanceFingerprint string           `json:"instance_fingerprint,omitempty"`
	// LeaseTTLSeconds > 0: the license requires an online lease of that lifetime.
	LeaseTTLSeconds int64 `json:"lease_ttl_seconds,omitempty"`
}

// Entitlement is an approved (or not yet) commercial record that a license is issued from.
type Entitlement struct {
	ID                  string
	CustomerID          string
	Product             string
	TemplateName        string
	TemplateVersion     int
	State               string
	StartsAt            time.Time
	EndsAt              time.Time
	Overrides           Overrides
	InstanceFingerprint string
	ContractRef         string
	Source              string
	Kind                string
	Supersedes          string
	// ChangeoverSeconds: for a successor, how long after it is issued the license it
	// replaces becomes `superseded` in revocation bundles (never before the
	// successor's not_before), so the customer has time to install it.
	ChangeoverSeconds int64
	CreatedBy         string
	CreatedAt         time.Time
	DecidedBy         string
	DecidedAt         time.Time
	DecisionReason    string
	// OrderID is set for a self-service entitlement: it is opened already approved by
	// the catalogue policy, for that paid order only (at most one per order).
	OrderID string
	// ApprovedCustomerName is the customer's name when the entitlement was approved:
	// the license is signed with it.
	ApprovedCustomerName string
	// CustomerName is the customer's name now (read with the entitlement, for lists).
	CustomerName string
	// Reason says why it was opened (a renewal's, replacement's or top-up's reason,
	// or a note for the approver); "" when none was given.
	Reason string
}

var fingerprintRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,200}$`)

// Validate checks the fields that do not depend on the template.
func (e *Entitlement) Validate() error {
	f := map[string]string{}
	if !ValidID(PrefixCustomer, e.CustomerID) {
		f["customer_id"] = "not a customer ID (cus_…)"
	}
	if e.TemplateName == "" {
		f["template"] = "a template is required"
	}
	if e.StartsAt.IsZero() || e.EndsAt.IsZero() {
		f["starts_at"] = "start and end are required"
	} else if !e.StartsAt.Before(e.EndsAt) {
		f["ends_at"] = "the end must be after the start"
	}
	if e.InstanceFingerprint != "" && !fingerprintRe.MatchString(e.InstanceFingerprint) {
		f["instance_fingerprint"] = "1–200 characters of letters, digits and . _ : -"
	}
	if len(e.ContractRef) > 200 {
		f["contract_ref"] = "at most 200 characters"
	} else if !OneLine(e.ContractRef) {
		f["contract_ref"] = "one line of text, without control characters"
	}
	if len(e.Reason) > 200 {
		f["reason"] = "at most 200 characters"
	} else if !OneLine(e.Reason) {
		f["reason"] = "one line of text, without control characters"
	}
	switch e.Source {
	case SourceStaff, SourceSelfService, SourceMarketplace:
	default:
		f["source"] = "staff, self-service or marketplace"
	}
	return Invalid(f)
}

// CanApprove applies maker-checker: a draft may be approved or rejected by an approver
// or admin who (when makerChecker is on) did not create it.
func (e *Entitlement) CanApprove(by *Staff, makerChecker bool) error {
	if e.State != StateDraft {
		return Errorf(ECONFLICT, "entitlement %s is %s, not draft", e.ID, e.State)
	}
	if err := Require(by, RoleApprover, "approving"); err != nil {
		return err
	}
	if makerChecker && e.CreatedBy == by.Email {
		return Errorf(EFORBIDDEN, "maker-checker: the approver must not be the creator of the entitlement")
	}
	return nil
}

// CanCancel: a draft or approved entitlement that has not issued may be cancelled by
// its creator or an approver.
func (e *Entitlement) CanCancel(by *Staff) error {
	if e.State != StateDraft && e.State != StateApproved {
		return Errorf(ECONFLICT, "entitlement %s is %s: only a draft or approved one can be cancelled", e.ID, e.State)
	}
	if Require(by, RoleApprover, "") != nil && (by == nil || e.CreatedBy != by.Email) {
		return Errorf(EFORBIDDEN, "cancelling someone else's entitlement needs the approver role")
	}
	return nil
}

// CanIssue tells whether a license may be issued from the entitlement.
func (e *Entitlement) CanIssue() error {
	if e.State != StateApproved {
		return Errorf(ECONFLICT, "entitlement %s is %s: only an approved entitlement can be issued", e.ID, e.State)
	}
	return nil
}

// License statuses.
const (
	LicenseActive     = "active"
	LicenseRevoked    = "revoked"
	LicenseSuspended  = "suspended"
	LicenseSuperseded = "superseded"
)

// Status changes staff make to a license, with what each needs.
const (
	ActionRevoke    = "revoke"
	ActionSuspend   = "suspend"
	ActionReinstate = "reinstate"
)

// CheckStatusChange applies the license status rules: an active license may be
// revoked or suspended; a suspended one revoked or reinstated; a superseded one
// revoked, and suspended while still inside its changeover (inChangeover: its
// supersession is not yet in effect), both taking effect at once; revoked is final.
// Reinstating a license that has a successor returns it to superseded (its
// changeover ended by the suspension), never to active. Revoking and suspending need
// the approver role; all need a reason.
func CheckStatusChange(current string, hasSuccessor, inChangeover bool, action string, by *Staff, reason string) (next string, err error) {
	if err := Require(by, RoleApprover, "changing a license's status"); err != nil {
		return "", err
	}
	if len(reason) == 0 || len(reason) > 200 {
		return "", Invalid(map[string]string{"reason": "a reason of 1 to 200 characters is required (it is shown in revocation bundles)"})
	}
	switch {
	case action == ActionRevoke && (current == LicenseActive || current == LicenseSuspended || current == LicenseSuperseded):
		return LicenseRevoked, nil
	case action == ActionSuspend && (current == LicenseActive || (current == LicenseSuperseded && inChangeover)):
		return LicenseSuspended, nil
	case action == ActionReinstate && current == LicenseSuspended && hasSuccessor:
		return LicenseSuperseded, nil
	case action == ActionReinstate && current == LicenseSuspended:
		return LicenseActive, nil
	}
	return "", Errorf(ECONFLICT, "a %s license can't be %s", current, pastTense[action])
}

var pastTense = map[string]string{ActionRevoke: "revoked", ActionSuspend: "suspended", ActionReinstate: "reinstated"}

// License is an issued license: its metadata and the exact signed file.
type License struct {
	ID              string
	EntitlementID   string
	CustomerID      string
	CustomerName    string
	Product         string
	SKU             string
	TemplateVersion int
	KeyID           string
	IssuedAt        time.Time
	NotBefore       time.Time
	ExpiresAt       time.Time
	Form            string // envelope or jws
	Terms           Terms
	Status          string
	StatusReason    string
	// StatusEffectiveAt is when a revocation, suspension or supersession takes effect
	// in revocation bundles.
	StatusEffectiveAt time.Time
	StatusChangedBy   string
	Supersedes        string
	SupersededBy      string
	// BlockedWith names the successor this license was revoked or suspended together
	// with (chain revocation), "" otherwise.
	BlockedWith string
	// SupersessionLifted: this license's supersession of its predecessor was lifted
	// (the previous license was restored after a refund or dispute of this one).
	SupersessionLifted bool
	File               []byte
	FileSHA256         []byte
	FileName           string
	ContentType        string
	CreatedBy          string
	// ContractRef is the contract reference of the entitlement it was issued from
	// (kept by the issuer; the signed file has no member for it, formats.md section 3).
	ContractRef string
	// Summary is the safe summary: scalar metadata only, never payload or signature.
	Summary map[string]any
}

// LicenseFilter narrows and pages a license list (keyset pagination, newest first).
type LicenseFilter struct {
	CustomerID string
	Product    string
	SKU        string
	Status     string
	// ExpiringBefore lists active licenses ending before this time, soonest first
	// (no cursor: the list is bounded by Limit).
	ExpiringBefore time.Time
	// After is the cursor: the (issued_at, id) of the last row of the previous page.
	AfterIssuedAt time.Time
	AfterID       string
	Limit         int
	// IssuedSince, when set, keeps only licenses issued at or after it (what a bulk
	// job that started then may have issued).
	IssuedSince time.Time
}

// The products the issuer licenses.
const (
	ProductRouter  = "genai-smart-router"
	ProductCoreSDK = "coresdk"
)

// ValidProduct reports whether p is a product the issuer licenses.
func ValidProduct(p string) bool { return p == ProductRouter || p == ProductCoreSDK }

// MaxLimitValue is the largest value of a limit: 2^53 - 1, the largest integer every
// JSON reader keeps exactly.
const MaxLimitValue = 1<<53 - 1

// OneLine reports whether s is one line of printable text: valid UTF-8, no control
// characters (newlines, NUL, escapes) and no line or paragraph separators. Every name
// a person types is one (names go into signed payloads, mails and Markdown).
func OneLine(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			return false
		}
	}
	return true
}
