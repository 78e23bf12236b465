package entitlements

import (
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
	if len(name) > 200 {
		f["name"] = "at most 200 characters"
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

// Active reports whether the token still works at now.
func (t *CustomerToken) Active(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || t.ExpiresAt.After(now))
}

// Principal is who reads a customer's files: a signed-in portal user, a customer API
// token, or staff on the customer's behalf. Every customer-scoped read is made with
// one, and the storage call filters by its CustomerID.
type Principal struct {
	CustomerID string
	Kind       string // portal_user, customer_token, staff
	Actor      string // the portal user's email, the token's ID, the staff email
	Addr       string // the client address, for the download record
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
	What       string // file, summary, checklist, bundle
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
	Name        string
}

// What a download delivers.
const (
	WhatFile      = "file"
	WhatSummary   = "summary"
	WhatChecklist = "checklist"
	WhatBundle    = "bundle"
)
