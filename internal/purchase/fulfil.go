package purchase

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/stripe/stripe-go/v76"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/internal/templates"
)

// Errors of Fulfil that change nothing and are logged.
var (
	ErrUnknownOrder = entitlements.Errorf(entitlements.ENOTFOUND, "the session belongs to no known order")
	ErrMismatch     = entitlements.Errorf(entitlements.ECONFLICT, "the session does not match its order (session, amount, currency or payment)")
)

// Fulfil is the one fulfilment function. It takes a Checkout Session (from a signed
// webhook or retrieved from Stripe by the success page), finds its order, checks that
// the session is the order's with the same amount and currency, and fulfils only a
// session whose payment_status is paid or no_payment_required: one license per order,
// whatever the number, order or concurrency of calls. An unpaid session moves the
// order to processing and issues nothing.
func (s *Service) Fulfil(ctx context.Context, sess *stripe.CheckoutSession, via string) (*Result, error) {
	o, err := s.orderOf(ctx, sess, via)
	if err != nil {
		return nil, err
	}
	return s.fulfilSession(ctx, o, sess, via)
}

// orderOf finds a session's order: by its client reference, then its metadata.
func (s *Service) orderOf(ctx context.Context, sess *stripe.CheckoutSession, via string) (*entitlements.Order, error) {
	orderID := sess.ClientReferenceID
	if orderID == "" {
		orderID = sess.Metadata["order_id"]
	}
	if !entitlements.ValidID(entitlements.PrefixOrder, orderID) {
		s.logf(ctx, slog.LevelWarn, "stripe: session for no order", "session_id", sess.ID, "via", via)
		return nil, errNoOrderRef
	}
	o, err := s.store.GetOrder(ctx, orderID)
	if entitlements.ErrorCode(err) == entitlements.ENOTFOUND {
		s.logf(ctx, slog.LevelWarn, "stripe: session for an unknown order", "session_id", sess.ID, "order_id", orderID, "via", via)
		return nil, ErrUnknownOrder
	}
	if err != nil {
		return nil, err
	}
	if sess.ID != o.CheckoutSessionID || (sess.ClientReferenceID != "" && sess.ClientReferenceID != o.ID) {
		s.logf(ctx, slog.LevelWarn, "stripe: session is not its order's: nothing done", "order_id", o.ID, "session_id", sess.ID, "via", via)
		return nil, ErrMismatch
	}
	return o, nil
}

// errNoOrderRef: a session that names no order at all; no redelivery can match it.
var errNoOrderRef = entitlements.Errorf(entitlements.ENOTFOUND, "the session names no order")

// Result is what a fulfilment did.
type Result struct {
	Order   *entitlements.Order
	License *entitlements.License // nil until fulfilled
	// LeaseToken is set only for the call that issued a lease-required license (shown
	// once); other callers rotate the token in the portal to get one.
	LeaseToken string
}

func (s *Service) fulfilSession(ctx context.Context, o *entitlements.Order, sess *stripe.CheckoutSession, via string) (*Result, error) {
	if sess.ID != o.CheckoutSessionID || (sess.ClientReferenceID != "" && sess.ClientReferenceID != o.ID) ||
		sess.AmountTotal != o.Amount || !strings.EqualFold(string(sess.Currency), o.Currency) {
		s.logf(ctx, slog.LevelWarn, "stripe: session does not match its order: nothing done", "order_id", o.ID, "session_id", sess.ID,
			"amount", sess.AmountTotal, "currency", sess.Currency, "order_amount", o.Amount, "order_currency", o.Currency, "via", via)
		return nil, ErrMismatch
	}
	pi := ""
	if sess.PaymentIntent != nil {
		pi = sess.PaymentIntent.ID
	}
	to, from := entitlements.OrderPaid, []string{entitlements.OrderPending, entitlements.OrderProcessing}
	switch sess.PaymentStatus {
	case stripe.CheckoutSessionPaymentStatusPaid, stripe.CheckoutSessionPaymentStatusNoPaymentRequired:
	default:
		// Asynchronous payment (bank debit): wait for async_payment_succeeded.
		to, from = entitlements.OrderProcessing, []string{entitlements.OrderPending}
	}
	// The payment intent is recorded with the move, and a refund or dispute Stripe
	// sent before it is applied then (the order issues nothing).
	cur, err := s.store.MarkPayment(ctx, o.ID, to, from, pi)
	if errors.Is(err, storage.ErrPaymentOfAnotherOrder) {
		s.logf(ctx, slog.LevelWarn, "stripe: session's payment intent belongs to another order: nothing done", "order_id", o.ID, "payment_intent", pi, "via", via)
		return nil, ErrMismatch
	}
	if err != nil {
		return nil, err
	}
	if to == entitlements.OrderProcessing {
		return &Result{Order: cur}, nil
	}
	return s.fulfilOrder(ctx, cur, via)
}

// fulfilOrder issues the license of a paid order, exactly once, under the
// customer's order lock (storage.WithOrderLock): one fulfilment, refund or dispute
// of a customer's orders at a time, on every replica. Under it the order is read
// again: a fulfilled one answers with its license (every caller of a fulfilled order
// gets the same answer), one no longer paid issues nothing.
func (s *Service) fulfilOrder(ctx context.Context, o *entitlements.Order, via string) (*Result, error) {
	if o.FulfilledLicenseID != "" {
		return s.resultOf(ctx, o)
	}
	if o.Status != entitlements.OrderPaid {
		// Not paid yet, failed, held, or refunded or disputed before it was fulfilled
		// (Stripe does not order its events): nothing to issue.
		return &Result{Order: o}, nil
	}
	var res *Result
	err := s.store.WithOrderLock(ctx, o.CustomerID, lockWait, func() error {
		var err error
		res, err = s.fulfilLocked(ctx, o.ID, via)
		return err
	})
	return res, err
}

func (s *Service) resultOf(ctx context.Context, o *entitlements.Order) (*Result, error) {
	res := &Result{Order: o}
	if o.FulfilledLicenseID != "" {
		l, err := s.store.GetLicense(ctx, o.FulfilledLicenseID)
		if err != nil {
			return nil, err
		}
		res.License = l
	}
	return res, nil
}

// fulfilLocked opens the order's entitlement, issues its license and marks the order
// fulfilled; a refusal no retry can fix holds the order for staff instead.
func (s *Service) fulfilLocked(ctx context.Context, id, via string) (*Result, error) {
	o, err := s.store.GetOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	if o.FulfilledLicenseID != "" || o.Status != entitlements.OrderPaid {
		return s.resultOf(ctx, o)
	}
	ent, err := s.openEntitlement(ctx, o)
	if err != nil {
		return s.holdIfRefused(ctx, o, err)
	}
	l, tok, err := s.Issuer.IssueWithToken(ctx, ent.ID, issuance.SelfService)
	if entitlements.ErrorCode(err) == entitlements.ECONFLICT {
		// Issued by an earlier call that stopped before marking the order: that
		// license is the order's.
		if prev, perr := s.store.LicenseOfEntitlement(ctx, ent.ID); perr == nil {
			l, tok, err = prev, "", nil
		}
	}
	if err != nil {
		return s.holdIfRefused(ctx, o, err)
	}
	done, err := s.store.FulfilOrder(ctx, o.ID, l.ID, via)
	if err != nil {
		return nil, err
	}
	if done {
		s.logf(ctx, slog.LevelInfo, "order fulfilled", "order_id", o.ID, "license_id", l.ID, "via", via)
	}
	cur, err := s.store.GetOrder(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	return &Result{Order: cur, License: l, LeaseToken: tok}, nil
}

// holdIfRefused: a paid order whose fulfilment is refused in a way no retry can fix
// (its license is no longer current, a staff draft is in the way, the plan changed)
// is held in the staff queue with the reason, and the call succeeds: Stripe gets a
// 2xx, the customer's page says what happens next. Anything else (the database or a
// key unavailable) is returned, so Stripe redelivers and the page retries.
func (s *Service) holdIfRefused(ctx context.Context, o *entitlements.Order, err error) (*Result, error) {
	switch entitlements.ErrorCode(err) {
	case entitlements.ECONFLICT, entitlements.EINVALID, entitlements.EFORBIDDEN, entitlements.ENOTFOUND:
	default:
		return nil, err
	}
	reason := "not fulfilled automatically: " + entitlements.ErrorMessage(err)
	if _, herr := s.store.HoldOrder(ctx, o.ID, reason); herr != nil {
		return nil, herr
	}
	s.logf(ctx, slog.LevelWarn, "order held for staff: fulfil it by hand or refund it", "order_id", o.ID, "reason", reason)
	cur, gerr := s.store.GetOrder(ctx, o.ID)
	if gerr != nil {
		return nil, gerr
	}
	return &Result{Order: cur}, nil
}

// openEntitlement opens the order's entitlement, approved by the catalogue policy, as
// staff would through the same service (a new license, a renewal or a top-up); an
// order that opened one before gets that one.
func (s *Service) openEntitlement(ctx context.Context, o *entitlements.Order) (*entitlements.Entitlement, error) {
	if o.Kind != entitlements.OrderRenewal && o.Kind != entitlements.OrderTopUp {
		return s.Issuer.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: o.CustomerID, Template: o.Template,
			Source: entitlements.SourceSelfService, OrderID: o.ID, ContractRef: o.ID}, issuance.SelfService)
	}
	if ent, err := s.store.EntitlementOfOrder(ctx, o.ID); err == nil || entitlements.ErrorCode(err) != entitlements.ENOTFOUND {
		return ent, err
	}
	in, err := s.successorFor(ctx, o)
	if err != nil {
		return nil, err
	}
	return s.Issuer.CreateSuccessor(ctx, in, issuance.SelfService)
}

// successorFor applies a renewal or top-up to the license that is current when it is
// fulfilled (docs/purchase.md, "Which license an order applies to"): the newest of
// the line of the license it was bought for, which must serve with nothing ahead.
// The order is retargeted to it (audited). Credit packs add up: a pack that lands on
// a credit pack issued after this one was ordered carries both budgets. A
// fixed-term renewal can't add a term to a renewal issued meanwhile.
func (s *Service) successorFor(ctx context.Context, o *entitlements.Order) (entitlements.SuccessorInput, error) {
	in := entitlements.SuccessorInput{Source: entitlements.SourceSelfService, OrderID: o.ID, ContractRef: o.ID, Template: o.Template}
	cur, err := s.currentOf(ctx, o.LicenseID)
	if err != nil {
		return in, err
	}
	if err := NotCurrent(cur, s.now()); err != nil {
		return in, err
	}
	t, err := templates.Latest(o.Template)
	if err != nil {
		return in, err
	}
	// The license it was bought for was current when it was bought (Buy checks), so a
	// newer one landed after the order was placed.
	landedAfter := cur.ID != o.LicenseID
	switch o.Kind {
	case entitlements.OrderRenewal:
		in.Kind = entitlements.KindRenewal
		plan, err := s.Issuer.PlanOf(ctx, cur, issuance.SelfService)
		if err != nil {
			return in, err
		}
		if plan.SKU != o.Template {
			return in, entitlements.Errorf(entitlements.ECONFLICT, "the current license %s is on %s now, not %s", cur.ID, plan.SKU, o.Template)
		}
		if t.FixedTerm && landedAfter && cur.SKU == o.Template {
			return in, entitlements.Errorf(entitlements.ECONFLICT, "%s runs exactly %d days: it was renewed by %s meanwhile, and a second renewal can't add to it",
				o.Template, int(t.Term.Hours()/24), cur.ID)
		}
	case entitlements.OrderTopUp:
		in.Kind = entitlements.KindTopUp
		curT, terr := templates.Get(cur.SKU, cur.TemplateVersion)
		if pack, ok := t.Limits["token_budget"]; ok && terr == nil && curT.Inherit && landedAfter {
			in.Overrides = &entitlements.Overrides{Limits: map[string]int64{
				"token_budget": entitlements.StackedBudget(cur.Terms.Limits["token_budget"], pack)}}
		}
	}
	if cur.ID != o.LicenseID {
		if err := s.store.RetargetOrder(ctx, o.ID, o.LicenseID, cur.ID); err != nil {
			return in, err
		}
		s.logf(ctx, slog.LevelInfo, "order applies to the line's current license", "order_id", o.ID, "bought_for", o.LicenseID, "applies_to", cur.ID)
		o.LicenseID = cur.ID
	}
	in.LicenseID = cur.ID
	return in, nil
}

// currentOf follows a license's line to its newest license (superseded_by).
func (s *Service) currentOf(ctx context.Context, id string) (*entitlements.License, error) {
	l, err := s.store.GetLicense(ctx, id)
	for n := 0; err == nil && l.SupersededBy != ""; n++ {
		if n > 1000 {
			return nil, entitlements.Errorf(entitlements.ECONFLICT, "the line of license %s is too long", id)
		}
		l, err = s.store.GetLicense(ctx, l.SupersededBy)
	}
	return l, err
}

// OrderPage returns an order of the principal's customer for its page; when it is not
// fulfilled yet and has a Checkout Session, the session is retrieved from Stripe and
// fulfilled (the success page's call of Fulfil).
func (s *Service) OrderPage(ctx context.Context, p *entitlements.Principal, id string) (*Result, error) {
	if !entitlements.ValidID(entitlements.PrefixOrder, id) {
		return nil, entitlements.NotFound("order", id)
	}
	o, err := s.store.CustomerOrder(ctx, p.CustomerID, id)
	if err != nil {
		return nil, err
	}
	if o.FulfilledLicenseID != "" || o.CheckoutSessionID == "" {
		return s.fulfilOrder(ctx, o, "order page")
	}
	if o.Status != entitlements.OrderPending && o.Status != entitlements.OrderProcessing && o.Status != entitlements.OrderPaid {
		return &Result{Order: o}, nil
	}
	params := &stripe.CheckoutSessionParams{}
	params.Context = ctx
	sess, err := s.Stripe.CheckoutSessions.Get(o.CheckoutSessionID, params)
	if err != nil {
		s.logf(ctx, slog.LevelWarn, "stripe: session not retrieved", "order_id", o.ID, "err", err)
		return &Result{Order: o}, nil // the page says "processing"; the webhook will come
	}
	res, err := s.fulfilSession(ctx, o, sess, "success page")
	if errors.Is(err, ErrMismatch) {
		return &Result{Order: o}, nil
	}
	return res, err
}
