package entitlements

import (
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"
)

// PrefixOrder starts a self-service order's ID.
const PrefixOrder = "ord_"

// Order kinds: what a self-service purchase does.
const (
	OrderEvaluation = "evaluation" // a free eval-72h, one per customer
	OrderPurchase   = "purchase"   // a new license from a template (a pilot)
	OrderRenewal    = "renewal"    // renews one of the customer's licenses
	OrderTopUp      = "top-up"     // a credit pack for one of the customer's licenses
)

// Order statuses.
const (
	OrderPending    = "pending"    // created; Checkout not completed
	OrderProcessing = "processing" // Checkout completed, asynchronous payment not yet settled
	OrderPaid       = "paid"       // paid (or free): fulfilment under way
	OrderFulfilled  = "fulfilled"  // its license is issued
	OrderFailed     = "failed"     // the asynchronous payment failed
	OrderRefunded   = "refunded"   // refunded after fulfilment: license suspended, in the staff queue
	OrderDisputed   = "disputed"   // disputed: license suspended, in the staff queue
)

// PolicyCatalogue is who approves a self-service entitlement: the catalogue policy,
// recorded as such in the audit trail.
const PolicyCatalogue = "policy:catalogue"

// Order is one self-service purchase.
type Order struct {
	ID                 string
	CustomerID         string
	Item               string
	Kind               string
	Template           string
	Amount             int64 // minor units (cents)
	Currency           string
	LicenseID          string // renewed or topped up
	CheckoutSessionID  string
	PaymentIntent      string
	Status             string
	FulfilledLicenseID string
	ReviewReason       string
	ReviewedBy         string
	CreatedBy          string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// EvaluationDomain is the domain one free evaluation is counted by: the registrable
// domain of the email address (its public suffix plus one label), so a.example.com
// and b.example.com are one domain. An address whose domain has no registrable part
// (an IP, a bare name) counts as itself.
func EvaluationDomain(email string) string {
	domain := strings.ToLower(email[strings.LastIndex(email, "@")+1:])
	if d, err := publicsuffix.EffectiveTLDPlusOne(domain); err == nil {
		return d
	}
	return domain
}
