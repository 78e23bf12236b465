package entitlements

import "time"

// PrefixJob starts a bulk job's ID.
const PrefixJob = "job_"

// JobIssueAllApproved is the kind of `license issue --all-approved`.
const JobIssueAllApproved = "issue-all-approved"

// BulkJob is a bulk run and what became of each of its items: what the operator reads
// again when the stream that reported it broke.
type BulkJob struct {
	ID         string
	Kind       string
	Actor      string
	StartedAt  time.Time
	FinishedAt *time.Time // nil: running, or its issuer stopped before the end
	Items      []BulkJobItem
}

// BulkJobItem is one entitlement of a bulk issue.
type BulkJobItem struct {
	N             int
	EntitlementID string
	// LicenseID is the license the job issued for it ("" when none).
	LicenseID string
	// Error is why it failed ("" when it did not, or is not done).
	Error string
	// LeaseRequired: the license has a lease token, shown once on the stream.
	LeaseRequired bool
	// TokenWritten: the stream line carrying the lease token was written (which is
	// not proof the client read it: a line written just before a break can be lost).
	TokenWritten bool
	// Recorded: the job recorded this item's outcome. A license found for an
	// unrecorded item was issued after its issuer stopped reporting (it died, or
	// the item's outcome was unknown): its token was never delivered.
	Recorded bool
}

// NeedsRotation reports whether the item's lease token may never have reached the
// operator, so the license needs a new one (rotate-lease-token).
func (i BulkJobItem) NeedsRotation() bool {
	return i.LicenseID != "" && i.LeaseRequired && !i.TokenWritten
}
