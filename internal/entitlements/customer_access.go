package entitlements

import (
	"encoding/hex"
	"strings"
	"time"
)

// PrefixCustomerToken starts a customer API token's ID (not the token itself).
const PrefixCustomerToken = "ctk_"

// PortalUser is a person of one customer who signs in to the portal by emailed link.
type PortalUser struct {
	ID          int64
	CustomerID  string
	Email       string
	Name        string
	CreatedAt   time.Time
	CreatedBy   string
	DisabledAt  *time.Time
	LastSignIn  *time.Time
	NeverSigned bool
}

// ValidatePortalUser checks an invitation's email and name.
func ValidatePortalUser(email, name string) (string, string, error) {
	email, name = strings.ToLower(strings.TrimSpace(email)), strings.TrimSpace(name)
	f := map[string]string{}
	if at := strings.Index(email, "@"); at < 1 || at == len(email)-1 || len(email) > 254 || strings.ContainsAny(email, " \t\r\n<>\",;") {
		f["email"] = "not an email address"
	}
	if len(name) > 200 || !OneLine(name) {
		f["name"] = "one line of at most 200 characters"
	}
	if !OneLine(email) {
		f["email"] = "not an email address"
	}
	return email, name, Invalid(f)
}

// CustomerToken is a customer API token's record; the token itself is shown once and
// kept only as a hash.
type CustomerToken struct {
	ID         string
	CustomerID string
	Name       string
	CreatedAt  time.Time
	CreatedBy  string
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Customer API token lifetimes (customer-api.md v1.1): 90 days unless chosen
// otherwise; TokenNeverExpires only by explicit choice.
const (
	DefaultTokenLifetime = 90 * 24 * time.Hour
	TokenNeverExpires    = time.Duration(-1)
)

// Active reports whether the token still works at now.
func (t *CustomerToken) Active(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || t.ExpiresAt.After(now))
}

// Principal is who reads a customer's files: a signed-in portal user, a customer API
// token, or staff on the customer's behalf. Every customer-scoped read is made with
// one, and the storage call filters by its CustomerID.
type Principal struct {
	CustomerID string
	// UserID is the portal user's ID when Kind is portal_user (0 otherwise).
	UserID int64
	Kind   string // portal_user, customer_token, staff
	Actor  string // the portal user's email, the token's ID, the staff email
	Addr   string // the client address, for the download record
}

// Principal kinds, as downloads.actor_kind records them.
const (
	PrincipalPortalUser    = "portal_user"
	PrincipalCustomerToken = "customer_token"
	PrincipalStaff         = "staff"
)

// Download is one delivered file: the evidence of delivery.
type Download struct {
	ID         int64
	At         time.Time
	CustomerID string
	LicenseID  string
	Product    string
	What       string // file, summary, checklist, bundle, release
	FileName   string // the release file, for a release download
	ActorKind  string
	Actor      string
	ClientAddr string
}

// CustomerStatus is a license's status as customer-api.md v1.1 names it (active,
// suspended, revoked, superseded, expired): License.StateAt's Status.
func CustomerStatus(l *License, now time.Time) string { return l.StateAt(now).Status }

// File is a delivered file: its exact bytes and how to serve them.
type File struct {
	Bytes       []byte
	ContentType string
	// Name is the file name the customer API's spec fixes (license.json, …).
	Name string
	// BrowserName is the name a browser saves it under: the license ID and SKU in
	// front, so a second download is not "license (1).json".
	BrowserName string `json:",omitempty"`
}

// BrowserFileName is a delivered file's name in a browser: lic_…-SKU.license.json,
// lic_…-SKU.operator-checklist.md.
func BrowserFileName(l *License, name string) string {
	return l.ID + "-" + l.SKU + "." + name
}

// What a download delivers.
const (
	WhatFile      = "file"
	WhatSummary   = "summary"
	WhatChecklist = "checklist"
	WhatBundle    = "bundle"
	WhatRelease   = "release" // a release file (the verifier), no license
)

// ReleaseFile is one file of the verifier release customers download
// (customer-api.md v1.1 `GET /v1/downloads`).
type ReleaseFile struct {
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	Version  string `json:"version"`
	Platform string `json:"platform"` // GOOS/GOARCH; "" for SHA256SUMS and keyset.json
}

// SafeSummary is the safe summary of customer-api.md: exactly these members, never
// payload bytes beyond them, signatures or key material.
type SafeSummary struct {
	LicenseID    string           `json:"license_id"`
	Product      string           `json:"product"`
	SKU          string           `json:"sku"`
	Status       string           `json:"status"`
	CustomerID   string           `json:"customer_id"`
	KeyID        string           `json:"key_id"`
	IssuedAt     string           `json:"issued_at"`
	NotBefore    string           `json:"not_before"`
	ExpiresAt    string           `json:"expires_at"`
	Features     []string         `json:"features"`
	Limits       map[string]int64 `json:"limits"`
	Supersedes   *string          `json:"supersedes"`
	SupersededBy *string          `json:"superseded_by"`
	// SupersededEffectiveAt is until when a superseded license keeps working
	// (customer-api.md v1.1); null when it was not replaced.
	SupersededEffectiveAt *string `json:"superseded_effective_at"`
	LeaseRequired         bool    `json:"lease_required"`
	FileSHA256            string  `json:"file_sha256"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// SafeSummaryOf builds the safe summary of a license at now.
func SafeSummaryOf(l *License, now time.Time) SafeSummary {
	features := l.Terms.Features
	if features == nil {
		features = []string{}
	}
	limits := l.Terms.Limits
	if limits == nil {
		limits = map[string]int64{}
	}
	sum := SafeSummary{LicenseID: l.ID, Product: l.Product, SKU: l.SKU, Status: CustomerStatus(l, now),
		CustomerID: l.CustomerID, KeyID: l.KeyID, IssuedAt: formatTime(l.IssuedAt), NotBefore: formatTime(l.NotBefore),
		ExpiresAt: formatTime(l.ExpiresAt), Features: features, Limits: limits, Supersedes: optional(l.Supersedes),
		SupersededBy: optional(l.SupersededBy), LeaseRequired: l.Terms.LeaseTTLSeconds > 0, FileSHA256: hex.EncodeToString(l.FileSHA256)}
	if l.SupersededBy != "" && !l.StatusEffectiveAt.IsZero() {
		// A license revoked or suspended after it was replaced still names its successor;
		// its supersession's end is the time its status took effect.
		sum.SupersededEffectiveAt = optional(formatTime(l.StatusEffectiveAt))
	}
	return sum
}

// formatTime is formats.md's time form: RFC 3339, UTC, whole seconds.
func formatTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }
