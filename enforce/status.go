package enforce

import (
	"slices"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/verify"
)

// State is the verdict: serving goes on in StateValid and StateGrace.
type State string

// The three states of formats.md section 6.
const (
	StateValid   State = verify.StatusValid
	StateGrace   State = verify.StatusGrace
	StateBlocked State = verify.StatusBlocked
)

// Reason is a license-* code of formats.md section 6, or "" when valid.
type Reason string

// The reason codes, as the router document's failure table names them.
const (
	ReasonMissing               Reason = verify.ReasonMissing
	ReasonInvalid               Reason = verify.ReasonInvalid
	ReasonProductMismatch       Reason = verify.ReasonProductMismatch
	ReasonClockRollback         Reason = verify.ReasonClockRollback
	ReasonNotYetValid           Reason = verify.ReasonNotYetValid
	ReasonInstanceMismatch      Reason = verify.ReasonInstanceMismatch
	ReasonRevocationRequired    Reason = verify.ReasonRevocationRequired
	ReasonRevocationCheckFailed Reason = verify.ReasonRevocationCheckFailed
	ReasonRevoked               Reason = verify.ReasonRevoked
	ReasonSuspended             Reason = verify.ReasonSuspended
	ReasonSuperseded            Reason = verify.ReasonSuperseded
	ReasonExpired               Reason = verify.ReasonExpired
	ReasonLeaseRequired         Reason = verify.ReasonLeaseRequired
	ReasonLeaseInvalid          Reason = verify.ReasonLeaseInvalid
	ReasonLeaseExpired          Reason = verify.ReasonLeaseExpired
	ReasonFeatureForbidden      Reason = verify.ReasonFeatureForbidden
	ReasonLimitExceeded         Reason = verify.ReasonLimitExceeded
)

// Reasons lists every reason code, in the spec's order.
var Reasons = []Reason{ReasonMissing, ReasonInvalid, ReasonProductMismatch, ReasonClockRollback, ReasonNotYetValid,
	ReasonInstanceMismatch, ReasonRevocationRequired, ReasonRevocationCheckFailed, ReasonRevoked, ReasonSuspended,
	ReasonSuperseded, ReasonExpired, ReasonLeaseRequired, ReasonLeaseInvalid, ReasonLeaseExpired,
	ReasonFeatureForbidden, ReasonLimitExceeded}

// Status is the last check's verdict with the safe fields the router document allows
// in logs, metrics and the admin status API: scalars and lists, never payload bytes,
// signatures or key material beyond the key ID. Its JSON is exactly the members of
// /admin/license/status.
type Status struct {
	State      State
	Reason     Reason
	LicenseID  string
	CustomerID string
	Product    string
	SKU        string // a CoreSDK token's plan
	KeyID      string
	Plan       string // CoreSDK only
	NotBefore  time.Time
	ExpiresAt  time.Time // zero: no license was read
	// DaysUntilExpiry is calendar days from now to ExpiresAt (verify.DaysUntil),
	// computed when Status is called; zero or less once expired.
	DaysUntilExpiry int
	Features        []string
	Limits          map[string]int64
	GraceActive     bool
	// GraceEndsAt is when grace ends at the latest (the license's grace period, the
	// operator's cap, the kept license's expiry): zero unless GraceActive.
	GraceEndsAt    time.Time
	BundleSequence *int64    // nil: no bundle was checked
	BundleIssuedAt time.Time // of that bundle
	LeaseExpiresAt time.Time
	CheckedAt      time.Time
	// Detail says why in safe words, for the operator's log; it is not in the JSON,
	// which callers' support tickets may carry.
	Detail   string
	Warnings []string
}

// Serving reports whether requests may be served (valid or grace).
func (s Status) Serving() bool { return s.State == StateValid || s.State == StateGrace }

// statusWire is the /admin/license/status body.
type statusWire struct {
	Status          State            `json:"status"`
	Reason          Reason           `json:"reason"`
	LicenseID       string           `json:"license_id"`
	CustomerID      string           `json:"customer_id"`
	SKU             string           `json:"sku"`
	KeyID           string           `json:"key_id"`
	ExpiresAt       *string          `json:"expires_at"`
	DaysUntilExpiry *int             `json:"days_until_expiry"`
	Features        []string         `json:"features"`
	Limits          map[string]int64 `json:"limits"`
	GraceActive     bool             `json:"grace_active"`
	BundleSequence  *int64           `json:"bundle_sequence"`
}

// MarshalJSON renders the admin status: status, reason, license_id, customer_id, sku,
// key_id, expires_at (RFC 3339, or null with no license), days_until_expiry (or null),
// features, limits, grace_active, bundle_sequence (or null).
func (s Status) MarshalJSON() ([]byte, error) {
	w := statusWire{Status: s.State, Reason: s.Reason, LicenseID: s.LicenseID, CustomerID: s.CustomerID, SKU: s.SKU,
		KeyID: s.KeyID, Features: s.Features, Limits: s.Limits, GraceActive: s.GraceActive, BundleSequence: s.BundleSequence}
	if w.Features == nil {
		w.Features = []string{}
	}
	if w.Limits == nil {
		w.Limits = map[string]int64{}
	}
	if !s.ExpiresAt.IsZero() {
		e, d := verify.FormatTime(s.ExpiresAt), s.DaysUntilExpiry
		w.ExpiresAt, w.DaysUntilExpiry = &e, &d
	}
	return json.Marshal(w, json.Deterministic(true))
}

// clone gives a caller its own lists, so nobody can edit the shared snapshot.
func (s Status) clone() Status {
	s.Features = slices.Clone(s.Features)
	if s.Limits != nil {
		m := make(map[string]int64, len(s.Limits))
		for k, v := range s.Limits {
			m[k] = v
		}
		s.Limits = m
	}
	s.Warnings = slices.Clone(s.Warnings)
	if s.BundleSequence != nil {
		n := *s.BundleSequence
		s.BundleSequence = &n
	}
	return s
}
