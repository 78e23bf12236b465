package entitlements

import "time"

// AuditEvent is one append-only, hash-chained record of a state change.
type AuditEvent struct {
	ID      int64
	At      time.Time
	Actor   string
	Action  string
	Subject string
	Details map[string]string // safe scalar details only: never key material or file bytes
	Hash    []byte
}

// AuditFilter pages the trail, newest first.
type AuditFilter struct {
	Subject  string
	Actor    string
	Action   string
	Since    time.Time // zero: from the start
	BeforeID int64     // 0: from the newest
	Limit    int
}

// ChainReport is the outcome of VerifyAudit.
type ChainReport struct {
	Events   int64
	BrokenAt int64 // 0: intact; else the ID of the first event that does not chain
	Why      string
}

// Bucket is one bar of a console plot: a period's start and its count.
type Bucket struct {
	At    time.Time
	Count int64
}
