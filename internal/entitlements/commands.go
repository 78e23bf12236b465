package entitlements

import (
	"time"

	"github.com/metrum/licensing/verify"
)

// EntitlementInput is what staff (or the portal) give to open an entitlement.
type EntitlementInput struct {
	CustomerID          string
	Template            string
	StartsAt            time.Time // zero: now
	EndsAt              time.Time // zero: start + the template's term
	Overrides           Overrides
	InstanceFingerprint string
	ContractRef         string
	// Reason is a note for the approver (optional).
	Reason string
	Source string
	// OrderID: a self-service order's entitlement, approved by the catalogue policy
	// (storage checks the order is paid and matches). Only the purchase service sets it.
	OrderID string
}

// KeyInput describes a key to make.
type KeyInput struct {
	Product  string
	Alg      string
	Purposes []verify.Purpose
	Backend  string // "file" (default) or "pkcs11"
}

// SuccessorInput opens a renewal, replacement or top-up of an issued license. Unset
// fields keep the license's own values.
type SuccessorInput struct {
	Kind      string // KindRenewal, KindReplacement or KindTopUp
	LicenseID string
	// Template: a renewal may move to another template of the product (default: the
	// same one, newest version); a top-up names its credit pack (required); a
	// replacement always keeps the exact template version, so it changes only what
	// it is asked to.
	Template            string
	StartsAt, EndsAt    time.Time
	Overrides           *Overrides
	InstanceFingerprint *string
	ContractRef         string
	// Reason says why it is opened, for the approver and the audit trail (optional).
	Reason string
	Source string
	// Changeover: how long the old license keeps working after the new one is issued
	// (nil: the service default).
	Changeover *time.Duration
	// OrderID: a self-service order's successor (see EntitlementInput.OrderID).
	OrderID string
}
