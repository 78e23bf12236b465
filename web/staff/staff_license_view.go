package staff

import (
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/web/ui"
)

// StaffLicense is one license's staff page.
type StaffLicense struct {
	License *entitlements.License
	History []StaffLeaseEvent
	// HistoryNext and DownloadsNext link the older lease events and deliveries.
	HistoryNext string
	// Status and StatusLabel are the one status truth's (License.StateAt).
	Status, StatusLabel string
	Terms               ui.Terms
	Downloads           []*entitlements.Download
	DownloadsNext       string
	Leases              []StaffLease
	Lease               bool
	// CanRestorePrevious: this suspended or revoked successor's predecessor may be
	// made active again (after a refund or dispute).
	CanRestorePrevious bool
	// Pending is the license's open renewal, replacement or top-up (nil: none); while
	// one is open, no other is offered.
	Pending *entitlements.Entitlement
	// Offer says which successors can be opened now (License.CanOpenSuccessor);
	// NoSuccessorWhy says why none is, to someone who could open one.
	Offer          SuccessorOffer
	NoSuccessorWhy string
}

// SuccessorOffer says which of renew, replace and top up a license page offers.
type SuccessorOffer struct {
	Renew, Replace, TopUp bool
}

// StaffLeaseEvent is one line of a license's lease history.
type StaffLeaseEvent struct {
	At, Fingerprint, Outcome, Reason string
}

// StaffLease is one lease slot.
type StaffLease struct {
	LeaseID, Fingerprint, RenewedAt, ExpiresAt, State string
}

// actionsFor says whether the page offers this member anything to do with the license
// (no empty Actions heading for a viewer, or on a revoked license).
func actionsFor(p Page, v StaffLicense) bool {
	st := v.License.Status
	approverActs := p.Perms.Approve && (st == "active" || st == "suspended" || st == "superseded" || v.CanRestorePrevious)
	return v.Offer.Renew || v.Offer.Replace || v.Offer.TopUp || approverActs || (v.Lease && p.Perms.Issue) || v.NoSuccessorWhy != ""
}
