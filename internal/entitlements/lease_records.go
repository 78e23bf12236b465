package entitlements

import "time"

// LeaseRequest is one POST /v1/leases, authenticated by nothing yet: the token hash
// is checked against the license's in the batch.
type LeaseRequest struct {
	TokenHash   []byte
	LicenseID   string
	Fingerprint string
	// NewLeaseID is used if the request takes a new slot.
	NewLeaseID string
	// Exclusive asks for the license's exclusive lock: the request may take a new
	// slot. Without it the caller expects a renewal, and the license is locked shared
	// (unless another request of the batch asks for exclusive).
	Exclusive bool
}

// LeaseState is what the database says about one request, read under the license's
// lock: the license (if it has a lease token), and the requesting host's slot.
type LeaseState struct {
	// Exclusive: the batch holds the license's exclusive lock (a new slot may be
	// taken); otherwise a shared one (only renewals and refusals may be decided).
	Exclusive         bool
	Known             bool // the license exists and uses leases
	TokenOK           bool
	Product           string
	Status            string
	StatusEffectiveAt time.Time // zero when active
	NotBefore         time.Time
	ExpiresAt         time.Time
	BoundFingerprint  string
	MaxInstances      *int64
	TTLSeconds        int64
	// LeaseKeyID is the product's active lease key when it may sign now (published,
	// before its not_after, by the database clock of this batch); "" when none may.
	LeaseKeyID string
	// The host's slot: SlotLeaseID "" when it never had one.
	SlotLeaseID   string
	SlotExpiresAt time.Time
	SlotReleased  bool
	// LiveSlots counts the license's occupied slots (lease-api.md v1.1): unexpired and
	// not released, or released beyond the release budget and still unexpired. It is
	// filled only for licenses of requests that NeedsCount says need it.
	LiveSlots int64
	// RetryAfter is set by the rules' rate limit when an authenticated request is
	// over its license's rate: it is then refused with 429 and leaves no row.
	RetryAfter time.Duration
	// QuarantineUntil: after `issuer recover`, until the license's longest lease could
	// have expired, leases granted before the restore may be held by hosts this
	// database forgot: no new slot is taken until then (zero: no quarantine).
	QuarantineUntil time.Time
}

// LeaseDecision is the outcome of one request: granted (a new slot), renewed (the
// host's slot extended), refused with a reason ("unauthorized" or a license-* code
// of formats.md section 6), or retry (it needs a new slot but the batch only holds the
// license's shared lock: decide it again under the exclusive one; nothing is written).
type LeaseDecision struct {
	Outcome string
	Reason  string
	Product string
	// KeyID is the lease key that must sign a granted lease (LeaseState.LeaseKeyID).
	KeyID      string
	LeaseID    string
	IssuedAt   time.Time
	ExpiresAt  time.Time
	RetryAfter time.Duration // rate limited: when to come back
}

// Granted reports whether the decision hands out a lease.
func (d *LeaseDecision) Granted() bool { return d.Outcome == "granted" || d.Outcome == "renewed" }

// LeaseRules decide a batch: NeedsCount says which requests may take a new slot (so
// their license's live slots must be counted), Decide turns states into decisions.
type LeaseRules interface {
	NeedsCount(now time.Time, r *LeaseRequest, st *LeaseState) bool
	Decide(now time.Time, reqs []LeaseRequest, states []LeaseState) []LeaseDecision
}

// Release outcomes of ReleaseLease (lease_events.reason of a 'released' row).
const (
	ReleaseFreed = "slot-freed"             // within the release budget: the slot is free at once
	ReleaseHeld  = "slot-held-until-expiry" // beyond it: the slot stays occupied until expires_at
)

// ReleaseResult says what a release did.
type ReleaseResult struct {
	// Known: the token is a lease token (of LicenseID). False: 401, nothing changed.
	Known     bool
	LicenseID string
	// Released: a live lease of this license was released now (false: unknown,
	// foreign or already released lease, a no-op). Freed: its slot was freed at once.
	Released  bool
	Freed     bool
	ExpiresAt time.Time
}

// Lease is a host's slot on a license.
type Lease struct {
	LicenseID   string
	Fingerprint string
	LeaseID     string
	GrantedAt   time.Time
	RenewedAt   time.Time
	ExpiresAt   time.Time
	ReleasedAt  *time.Time
	// FreedEarly: the release freed the slot at once (within the release budget).
	FreedEarly bool
}

// Occupied reports whether the slot counts against max_instances at now (v1.1).
func (l *Lease) Occupied(now time.Time) bool {
	return l.ExpiresAt.After(now) && (l.ReleasedAt == nil || !l.FreedEarly)
}

// LeaseEvent is one record of the lease history.
type LeaseEvent struct {
	ID          int64
	At          time.Time
	LicenseID   string
	Fingerprint string
	LeaseID     string
	Outcome     string
	Reason      string
	ExpiresAt   *time.Time
}
