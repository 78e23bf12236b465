// Package purchase is self-service purchase through Stripe Checkout: a free
// evaluation, a paid pilot, a renewal and a credit-pack top-up, sold from the
// catalogue in the config (prices never come from the browser), and fulfilled exactly
// once per order by one function, Fulfil, that the signed webhook and the success page
// both call.
package purchase

import (
	"context"
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
	// RetryWindow is how long an event that matches no order is answered 5xx, so
	// Stripe redelivers it; after it, the event is answered 2xx and kept for staff.
	// Stripe retries for up to three days (the default).
	RetryWindow time.Duration
	Log         *slog.Logger
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// DefaultRetryWindow is Stripe's retry period for an undelivered event.
const DefaultRetryWindow = 72 * time.Hour

// lockWait bounds how long a fulfilment waits for another one of the same customer.
const lockWait = 10 * time.Second

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
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
		BaseURL: strings.TrimRight(baseURL, "/"), DomainPeriod: cfg.EvaluationDomainPeriod, RetryWindow: DefaultRetryWindow, Log: log}, nil
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

// ItemsFor lists what can be bought for a license, or, with no license, the new
// things (evaluation, pilot). Only the customer's current license may be renewed or
// topped up (docs/purchase.md, "What can be bought"): one that serves with nothing
// ahead of it, never a revoked, suspended, superseded, expired or ending one. A
// renewal matches the line's plan (a credit pack's license renews the plan it
// topped up); a credit pack matches the product.
func (s *Service) ItemsFor(ctx context.Context, l *entitlements.License) ([]config.CatalogueItem, error) {
	var out []config.CatalogueItem
	if l == nil {
		for _, it := range s.Catalogue {
			if it.Kind == entitlements.OrderEvaluation || it.Kind == entitlements.OrderPurchase {
				out = append(out, it)
			}
		}
		return out, nil
	}
	if NotCurrent(l, s.now()) != nil {
		return nil, nil
	}
	plan, err := s.Issuer.PlanOf(ctx, l, issuance.SelfService)
	if err != nil {
		return nil, err
	}
	for _, it := range s.Catalogue {
		switch {
		case it.Kind == entitlements.OrderRenewal && it.Template == plan.SKU:
			out = append(out, it)
		case it.Kind == entitlements.OrderTopUp && productOf(it) == l.Product:
			out = append(out, it)
		}
	}
	return out, nil
}

func productOf(it config.CatalogueItem) string {
	t, err := templates.Latest(it.Template)
	if err != nil {
		return ""
	}
	return t.Product
}

// NotCurrent says why a renewal or top-up can't be bought for, or applied to, l at
// now (nil: it can): the status truth (License.StateAt) must say it serves with
// nothing ahead.
func NotCurrent(l *entitlements.License, now time.Time) error {
	st := l.StateAt(now)
	if st.Installable() {
		return nil
	}
	switch st.Phase {
	case entitlements.PhaseChangeover, entitlements.PhaseSuperseded:
		return entitlements.Errorf(entitlements.ECONFLICT, "license %s is replaced by %s: buy for the current license instead", l.ID, st.ReplacedBy)
	case entitlements.PhaseSuspended:
		return entitlements.Errorf(entitlements.ECONFLICT, "license %s is suspended: contact sales", l.ID)
	case entitlements.PhaseRevoked:
		return entitlements.Errorf(entitlements.ECONFLICT, "license %s is revoked: nothing can be bought for it", l.ID)
	case entitlements.PhaseExpired:
		return entitlements.Errorf(entitlements.ECONFLICT, "license %s has expired: contact sales to renew it", l.ID)
	}
	return entitlements.Errorf(entitlements.ECONFLICT, "license %s is %s: nothing can be bought for it now", l.ID, st.Label())
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
		if err := NotCurrent(l, s.now()); err != nil {
			return "", nil, err
		}
		items, err := s.ItemsFor(ctx, l)
		if err != nil {
			return "", nil, err
		}
		if !containsItem(items, it.ID) {
			return "", nil, entitlements.Errorf(entitlements.ECONFLICT, "%s can't be bought for license %s (%s)", it.Name, l.ID, l.SKU)
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
