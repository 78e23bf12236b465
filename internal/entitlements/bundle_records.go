package entitlements

import "time"

// Bundle is a published revocation bundle.
type Bundle struct {
	Sequence      int64
	Product       string
	IssuedAt      time.Time
	ExpiresAt     time.Time
	KeyID         string
	Entries       int
	SourceVersion int64
	Reason        string
	File          []byte
	FileSHA256    []byte
	PayloadSHA256 []byte
	CreatedBy     string
}

// BundleEntry is one listed license, as the payload will carry it.
type BundleEntry struct {
	LicenseID    string
	Status       string
	Reason       string
	EffectiveAt  time.Time
	SupersededBy string
}

// StatusChange is one revoke, suspend or reinstate of a license.
type StatusChange struct {
	LicenseID string
	Action    string
	Reason    string
	// EffectiveAt is when a revocation or suspension takes effect in bundles.
	EffectiveAt time.Time
	// Only changes this license alone: its predecessors still inside their changeover
	// keep working until it ends (docs/lifecycle.md, "Chain revocation").
	Only bool
}

// StatusChangeResult is what a status change did: the license, and the licenses that
// changed with it (predecessors blocked with it, or put back when it was reinstated).
type StatusChangeResult struct {
	License *License
	Chained []*License
}

// RecoverInput is one published bundle, already verified, whose revocations a
// database restored from a backup must not lose (issuer recover --from-bundle).
type RecoverInput struct {
	Product  string
	Sequence int64
	IssuedAt time.Time
	SHA256   []byte // of the bundle's signed payload
	Entries  []BundleEntry
	Actor    string
	DryRun   bool
}

// Recovered outcomes of one bundle entry.
const (
	RecoveredApplied   = "applied"   // the license row now says what the bundle says
	RecoveredUnknown   = "unknown"   // the database has no such license: kept as a recovered entry
	RecoveredAlready   = "already"   // the database already says as much
	RecoveredForeign   = "foreign"   // the license belongs to another product: ignored
	RecoveredLiftedMay = "suspended" // suspended here but absent from the bundle
)

// RecoveredEntry says what recovery did with one license.
type RecoveredEntry struct {
	LicenseID string
	Status    string // what the bundle says (or, for RecoveredLiftedMay, the database)
	Was       string // what the database said ("" when it had no row)
	Outcome   string
}

// RecoverReport is what recovering one bundle did.
type RecoverReport struct {
	Product string
	// Sequence is the bundle's; SequenceBefore and SequenceAfter the product's
	// counter before and after (never lowered).
	Sequence, SequenceBefore, SequenceAfter int64
	Entries                                 []RecoveredEntry
	// LeaseQuarantineFrom: from then, for each license's lease TTL, no host may take a
	// new lease slot of this product (zero on a dry run).
	LeaseQuarantineFrom time.Time
}
