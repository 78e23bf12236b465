package entitlements

import "time"

// Preview is the license an entitlement would issue, rendered by its template
// without signing: what an approver approves, and what staff confirm before a
// renewal, replacement or top-up is opened.
type Preview struct {
	Entitlement *Entitlement
	// CustomerName is the name the license would be signed with: the name approved,
	// or for a draft the customer's name now.
	CustomerName string
	// Terms is what the license would grant; Defaults what its template grants
	// without this entitlement's overrides and instance scope (for a credit pack: the
	// terms of the license it tops up, with the pack's budget).
	Terms    Terms
	Defaults Terms
	// TemplateTerm is the template's own term (FixedTerm: exactly that long).
	TemplateTerm time.Duration
	FixedTerm    bool
	// Payload is the payload (envelope form) or the JWS claims as the template renders
	// them, indented; its license ID and issue time are placeholders until it is issued.
	Payload []byte
	Form    string
	// RenewURL is the lease renew URL a lease-required license would carry.
	RenewURL string
	// Problem says why issuing it would be refused now ("" when it would not).
	Problem string
	// Base is the license it would replace (nil for a new license).
	Base *License
	// Existing are the customer's licenses, newest first (at most a page).
	Existing []*License
}
