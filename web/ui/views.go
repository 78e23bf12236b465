package ui

import (
	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

// Day formats a time for a page: minutes, UTC.
func Day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// LicenseRowOf is a license as a list row: status from the one status truth, features
// and limits as people read them (with their wire names).
func LicenseRowOf(l *entitlements.License, now time.Time) LicenseRow {
	st := l.StateAt(now)
	return LicenseRow{ID: l.ID, Product: l.Product, SKU: l.SKU, Status: st.Status, StatusLabel: st.Label(),
		ExpiresAt: Date(l.ExpiresAt), DaysLeft: entitlements.DaysLeft(l, now),
		Features: Features(l.Terms.Features), Limits: Limits(l.Terms.Limits)}
}

// LeaseRowOf is a lease slot as a table row, with what it means for the license's
// seats.
func LeaseRowOf(sl *entitlements.Lease, now time.Time) LeaseRow {
	r := LeaseRow{LeaseID: sl.LeaseID, Fingerprint: sl.Fingerprint, GrantedAt: Day(sl.GrantedAt), RenewedAt: Day(sl.RenewedAt), ExpiresAt: Day(sl.ExpiresAt)}
	switch {
	case !sl.ExpiresAt.After(now):
		r.State = "expired"
	case sl.ReleasedAt != nil && sl.FreedEarly:
		r.State = "released: slot free"
	case sl.ReleasedAt != nil:
		r.State = "released: slot taken until the lease expires"
	default:
		r.State, r.CanRelease = "active", true
	}
	return r
}

// LicenseRow is one license in the portal's list.
type LicenseRow struct {
	ID      string
	Product string
	SKU     string
	Status  string
	// StatusLabel says the status for people ("in changeover until …").
	StatusLabel string
	ExpiresAt   string
	DaysLeft    string
	Features    []Value
	Limits      []Value
}

// LeaseRow is one lease slot of a license.
type LeaseRow struct {
	LeaseID     string
	Fingerprint string
	GrantedAt   string
	RenewedAt   string
	ExpiresAt   string
	State       string
	CanRelease  bool
}
