// Package purchase is self-service purchase through Stripe Checkout: a free
// evaluation, a paid pilot, a renewal and a credit-pack top-up, sold from the
// catalogue in the config (prices never come from the browser), and fulfilled exactly
// once per order by one function, Fulfil, that the signed webhook and the success page
// both call.
package purchase

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/metrum/licensing/internal/config"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/internal/templates"
)

// Service sells the catalogue and fulfils orders.
type Service struct {
	store     *storage.Store
	Issuer    *issuance.Service
	Portal    *portal.Service
	Stripe    *client.API
	Catalogue []config.CatalogueItem
	// WebhookSecret checks the signature of every webhook.
	WebhookSecret string
	BaseURL       string
	// DomainPeriod: one free evaluation per email domain within it.
	DomainPeriod time.Duration
	Log          *slog.Logger
}

// New builds the service from the Stripe config; it checks that every catalogue item
// names a template that exists and fits its kind.
func New(cfg config.Stripe, store *storage.Store, iss *issuance.Service, ps *portal.Service, baseURL string, log *slog.Logger) (*Service, error) {
	for _, it := range cfg.Catalogue {
		t, err := templates.Latest(it.Template)
		if err != nil {
			return nil, fmt.Errorf("stripe.catalogue %s: %w", it.ID, err)
		}
		if (it.Kind == entitlements.OrderTopUp) != t.Inherit {
			return nil, fmt.Errorf("stripe.catalogue %s: a top-up sells a credit pack, and a credit pack is sold as a top-up", it.ID)
		}
	}
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL: stripe.String(cfg.APIURL), MaxNetworkRetries: stripe.Int64(2), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelError},
	})
	if cfg.APIURL == "" {
		backend = stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{MaxNetworkRetries: stripe.Int64(2),
			LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelError}})
	}
	sc := &client.API{}
	sc.Init(cfg.SecretKey, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
	return &Service{store: store, Issuer: iss, Portal: ps, Stripe: sc, Catalogue: cfg.Catalogue, WebhookSecret: cfg.WebhookSecret,
		BaseURL: strings.TrimRight(baseURL, "/"), DomainPeriod: cfg.EvaluationDomainPeriod, Log: log}, nil
}

// logf logs with the context the service was asked in, so the line names its
// request (logctx); a webhook's too.
func (s *Service) logf(ctx context.Context, level slog.Level, msg string, args ...any) {
	if s.Log != nil {
		s.Log.Log(ctx, level, msg, args...)
	}
}

// Item returns a catalogue item by ID.
func (s *Service) Item(id string) (config.CatalogueItem, bool) {
	for _, it := range s.Catalogue {
		if it.ID == id {
			return it, true
		}
	}
	return config.CatalogueItem{}, false
}

// ItemsFor lists what can be bought for a license (renewal matching its SKU, credit
// packs for a router license), or, with no license, the new things (evaluation, pilot).
func (s *Service) ItemsFor(l *entitlements.License) []config.CatalogueItem {
	var out []config.CatalogueItem
	for _, it := range s.Catalogue {
		switch {
		case l == nil && (it.Kind == entitlements.OrderEvaluation || it.Kind == entitlements.OrderPurchase):
			out = append(out, it)
		case l != nil && it.Kind == entitlements.OrderRenewal && it.Template == l.SKU:
			out = append(out, it)
		case l != nil && it.Kind == entitlements.OrderTopUp && eligibleForTopUp(l, it):
			out = append(out, it)
		}
	}
	return out
}

func eligibleForTopUp(l *entitlements.License, it config.CatalogueItem) bool {
	t, err := templates.Latest(it.Template)
	return err == nil && t.Product == l.Product && l.Status == entitlements.LicenseActive
}

// Buy starts a purchase for a signed-in portal user: it checks the item and the
// license it is for, creates the Checkout Session server-side from the catalogue
// (the order's ID as client_reference_id, in the metadata, and as the idempotency
// key), records the order with its session, and returns where to send the browser.
// A free evaluation has nothing to pay: it is fulfilled at once. Nothing is recorded
// when Stripe refuses.
func (s *Service) Buy(ctx context.Context, p *entitlements.Principal, itemID, licenseID string) (string, *entitlements.Order, error) {
	if p.Kind != entitlements.PrincipalPortalUser {
		return "", nil, entitlements.Errorf(entitlements.EFORBIDDEN, "purchases are made by a signed-in portal user")
	}
	it, ok := s.Item(itemID)
	if !ok {
		return "", nil, entitlements.Invalid(map[string]string{"item": "not in the catalogue"})
	}
	o := &entitlements.Order{ID: entitlements.NewID(entitlements.PrefixOrder), CustomerID: p.CustomerID, Item: it.ID, Kind: it.Kind,
		Template: it.Template, Amount: it.Price, Currency: it.Currency, CreatedBy: "portal:" + p.Actor}
	var name string
	switch it.Kind {
	case entitlements.OrderRenewal, entitlements.OrderTopUp:
		l, err := s.Portal.License(ctx, p, licenseID)
		if err != nil {
			return "", nil, err
		}
		if !containsItem(s.ItemsFor(l), it.ID) {
			return "", nil, entitlements.Errorf(entitlements.ECONFLICT, "%s can't be bought for license %s (%s, %s)", it.Name, l.ID, l.SKU, l.Status)
		}
		if l.Status == entitlements.LicenseSuspended {
			return "", nil, entitlements.Errorf(entitlements.ECONFLICT, "license %s is suspended: contact sales", l.ID)
		}
		o.LicenseID, name = l.ID, it.Name+" for "+l.ID
	case entitlements.OrderEvaluation:
		o.Status = entitlements.OrderPaid // nothing to pay
		if err := s.store.CreateOrder(ctx, o); err != nil {
			return "", nil, err
		}
		if _, err := s.fulfilOrder(ctx, o, "evaluation"); err != nil {
			return "", o, err
		}
		return "/portal/orders/" + o.ID, o, nil
	default:
		name = it.Name
	}
	params := &stripe.CheckoutSessionParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModePayment)),
		ClientReferenceID: stripe.String(o.ID),
		CustomerEmail:     stripe.String(p.Actor),
		SuccessURL:        stripe.String(s.BaseURL + "/portal/orders/" + o.ID + "?session_id={CHECKOUT_SESSION_ID}"),
		CancelURL:         stripe.String(s.BaseURL + "/portal/orders/" + o.ID + "?cancelled=1"),
		LineItems: []*stripe.CheckoutSessionLineItemParams{{
			Quantity: stripe.Int64(1),
			PriceData: &stripe.CheckoutSessionLineItemPriceDataParams{
				Currency: stripe.String(it.Currency), UnitAmount: stripe.Int64(it.Price),
				ProductData: &stripe.CheckoutSessionLineItemPriceDataProductDataParams{Name: stripe.String(name)},
			},
		}},
	}
	params.AddMetadata("order_id", o.ID)
	params.SetIdempotencyKey(o.ID)
	params.Context = ctx
	sess, err := s.Stripe.CheckoutSessions.New(params)
	if err != nil {
		s.logf(ctx, slog.LevelError, "stripe: checkout session not created", "order_id", o.ID, "err", err)
		return "", nil, &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "the payment provider could not be reached: try again in a moment", Err: err}
	}
	o.CheckoutSessionID = sess.ID
	if err := s.store.CreateOrder(ctx, o); err != nil {
		return "", nil, err
	}
	return sess.URL, o, nil
}

func containsItem(list []config.CatalogueItem, id string) bool {
	for _, it := range list {
		if it.ID == id {
			return true
		}
	}
	return false
}

// Errors of Fulfil that change nothing and are logged.
var (
	ErrUnknownOrder = entitlements.Errorf(entitlements.ENOTFOUND, "the session belongs to no known order")
	ErrMismatch     = entitlements.Errorf(entitlements.ECONFLICT, "the session does not match its order (session, amount or currency)")
)

// Fulfil is the one fulfilment function. It takes a Checkout Session (from a signed
// webhook or retrieved from Stripe by the success page), finds its order, checks that
// the session is the order's with the same amount and currency, and fulfils only a
// session whose payment_status is paid or no_payment_required: one license per order,
// whatever the number, order or concurrency of calls. An unpaid session moves the
// order to processing and issues nothing.
func (s *Service) Fulfil(ctx context.Context, sess *stripe.CheckoutSession, via string) (*Result, error) {
	orderID := sess.ClientReferenceID
	if orderID == "" {
		orderID = sess.Metadata["order_id"]
	}
	if !entitlements.ValidID(entitlements.PrefixOrder, orderID) {
		s.logf(ctx, slog.LevelWarn, "stripe: session for no order", "session_id", sess.ID, "via", via)
		return nil, ErrUnknownOrder
	}
	o, err := s.store.GetOrder(ctx, orderID)
	if entitlements.ErrorCode(err) == entitlements.ENOTFOUND {
		s.logf(ctx, slog.LevelWarn, "stripe: session for an unknown order", "session_id", sess.ID, "order_id", orderID, "via", via)
		return nil, ErrUnknownOrder
	}
	if err != nil {
		return nil, err
	}
	return s.fulfilSession(ctx, o, sess, via)
}

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
	switch sess.PaymentStatus {
	case stripe.CheckoutSessionPaymentStatusPaid, stripe.CheckoutSessionPaymentStatusNoPaymentRequired:
		if _, err := s.store.MoveOrder(ctx, o.ID, entitlements.OrderPaid, []string{entitlements.OrderPending, entitlements.OrderProcessing}, pi); err != nil {
			return nil, err
		}
	default:
		// Asynchronous payment (bank debit): wait for async_payment_succeeded.
		if _, err := s.store.MoveOrder(ctx, o.ID, entitlements.OrderProcessing, []string{entitlements.OrderPending}, pi); err != nil {
			return nil, err
		}
		cur, err := s.store.GetOrder(ctx, o.ID)
		return &Result{Order: cur}, err
	}
	cur, err := s.store.GetOrder(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	return s.fulfilOrder(ctx, cur, via)
}

// fulfilOrder issues the license of a paid order, exactly once: the order's
// entitlement is unique per order (a second call gets the first), an entitlement
// issues one license (a second issue is a conflict, and the first license is read
// back), and the order moves to fulfilled, with its audit event, once.
func (s *Service) fulfilOrder(ctx context.Context, o *entitlements.Order, via string) (*Result, error) {
	res := &Result{Order: o}
	if o.FulfilledLicenseID != "" {
		l, err := s.store.GetLicense(ctx, o.FulfilledLicenseID)
		res.License = l
		return res, err
	}
	if o.Status != entitlements.OrderPaid {
		// Not paid yet, failed, or refunded or disputed before it was fulfilled (Stripe
		// does not order its events): nothing to issue.
		return res, nil
	}
	ent, err := s.openEntitlement(ctx, o)
	if err != nil {
		return nil, err
	}
	l, tok, err := s.Issuer.IssueWithToken(ctx, ent.ID, issuance.SelfService)
	if entitlements.ErrorCode(err) == entitlements.ECONFLICT {
		// Issued by a concurrent call (or an earlier one that stopped before marking the
		// order): that license is the order's.
		if prev, perr := s.store.LicenseOfEntitlement(ctx, ent.ID); perr == nil {
			l, tok, err = prev, "", nil
		}
	}
	if err != nil {
		return nil, err
	}
	res.License, res.LeaseToken = l, tok
	done, err := s.store.FulfilOrder(ctx, o.ID, l.ID, via)
	if err != nil {
		return nil, err
	}
	if done {
		s.logf(ctx, slog.LevelInfo, "order fulfilled", "order_id", o.ID, "license_id", l.ID, "via", via)
	}
	res.Order, err = s.store.GetOrder(ctx, o.ID)
	return res, err
}

// openEntitlement opens the order's entitlement, approved by the catalogue policy, as
// staff would through the same service (a new license, a renewal or a top-up).
func (s *Service) openEntitlement(ctx context.Context, o *entitlements.Order) (*entitlements.Entitlement, error) {
	switch o.Kind {
	case entitlements.OrderRenewal, entitlements.OrderTopUp:
		kind, tmpl := entitlements.KindRenewal, ""
		if o.Kind == entitlements.OrderTopUp {
			kind, tmpl = entitlements.KindTopUp, o.Template
		}
		return s.Issuer.CreateSuccessor(ctx, entitlements.SuccessorInput{Kind: kind, LicenseID: o.LicenseID, Template: tmpl,
			Source: entitlements.SourceSelfService, OrderID: o.ID, ContractRef: o.ID}, issuance.SelfService)
	}
	return s.Issuer.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: o.CustomerID, Template: o.Template,
		Source: entitlements.SourceSelfService, OrderID: o.ID, ContractRef: o.ID}, issuance.SelfService)
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
	if o.Status == entitlements.OrderFulfilled || o.CheckoutSessionID == "" {
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

var timeZero time.Time
