package verify

// Reason codes of formats.md section 6.
const (
	ReasonMissing               = "license-missing"
	ReasonInvalid               = "license-invalid"
	ReasonProductMismatch       = "license-product-mismatch"
	ReasonClockRollback         = "license-clock-rollback"
	ReasonNotYetValid           = "license-not-yet-valid"
	ReasonInstanceMismatch      = "license-instance-mismatch"
	ReasonRevocationRequired    = "license-revocation-required"
	ReasonRevocationCheckFailed = "license-revocation-check-failed"
	ReasonRevoked               = "license-revoked"
	ReasonSuspended             = "license-suspended"
	ReasonSuperseded            = "license-superseded"
	ReasonExpired               = "license-expired"
	ReasonLeaseRequired         = "license-lease-required"
	ReasonLeaseInvalid          = "license-lease-invalid"
	ReasonLeaseExpired          = "license-lease-expired"
	ReasonFeatureForbidden      = "license-feature-forbidden"
	ReasonLimitExceeded         = "license-limit-exceeded"
)

// Statuses of a verification result.
const (
	StatusValid   = "valid"
	StatusGrace   = "grace"
	StatusBlocked = "blocked"
)

// graceable are the reasons grace may cover; nothing else ever is.
var graceable = map[string]bool{ReasonMissing: true, ReasonInvalid: true, ReasonRevocationCheckFailed: true}

// endsObservation are the results that are recorded in the state file and end its last
// valid observation (formats.md section 6, v1.1).
var endsObservation = map[string]bool{ReasonExpired: true, ReasonRevoked: true, ReasonSuspended: true, ReasonSuperseded: true}
