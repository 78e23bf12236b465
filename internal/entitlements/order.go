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
	OrderHeld       = "held"       // paid, fulfilment refused: in the staff queue, to fulfil by hand or refund
	OrderFulfilled  = "fulfilled"  // its license is issued
	OrderFailed     = "failed"     // the asynchronous payment failed
	OrderCancelled  = "cancelled"  // the Checkout Session expired unpaid
	OrderRefunded   = "refunded"   // refunded: its license (if any) suspended, in the staff queue
	OrderDisputed   = "disputed"   // disputed: its license (if any) suspended, in the staff queue
)

// Effects of a refund or dispute on an order (docs/purchase.md).
const (
	EffectRefunded      = "refunded"       // the whole amount refunded: suspend, queue
	EffectPartialRefund = "partial-refund" // part of it refunded: queue only
	EffectDisputed      = "disputed"       // a dispute opened: suspend, queue
)

// RefundEffect says what a refund does: a refund of the whole amount paid (or
// more) is EffectRefunded; less is EffectPartialRefund, which suspends nothing and
// asks staff to decide.
func RefundEffect(refunded, paid int64) string {
	if refunded >= paid {
		return EffectRefunded
	}
	return EffectPartialRefund
}

// PendingPaymentEvent is a Stripe event that matched no order yet (docs/purchase.md,
// "Events before their order").
type PendingPaymentEvent struct {
	EventID           string
	Type              string
	PaymentIntent     string
	CheckoutSessionID string
	OrderRef          string
	Effect            string
	Reason            string
	Deliveries        int
	FirstSeenAt       time.Time
	LastSeenAt        time.Time
	OrderID           string // set once matched
	GivenUp           bool   // Stripe's retries are over: answered 2xx, kept for staff
}

// StackedBudget is the token budget of a credit pack that lands on a license another
// purchase issued after this one was ordered (both were open at once): the budgets
// add, so two packs bought together grant both (docs/purchase.md, "Credit packs
// add up"). Capped at MaxLimitValue.
func StackedBudget(current, pack int64) int64 {
	if current < 0 {
		current = 0
	}
	if current > MaxLimitValue-pack {
		return MaxLimitValue
	}
	return current + pack
}

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
