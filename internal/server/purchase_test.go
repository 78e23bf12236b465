package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/metrum/licensing/internal/config"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/purchase"
	"github.com/metrum/licensing/internal/stripetest"
	"github.com/metrum/licensing/verify"
)

const webhookSecret = "whsec_test_metrum"

// mustShop is the portal with self-service purchase against stripe-mock (with the
// project's paid fixtures when paid is set: the success page then sees a paid
// session) and the default catalogue.
func mustShop(t *testing.T, paid bool) *portalEnv {
	t.Helper()
	fixtures := ""
	if paid {
		fixtures = stripetest.PaidFixtures()
	}
	api := stripetest.Start(t, fixtures)
	return mustPortalWith(t, 0, 0, func(e *portalEnv) *purchase.Service {
		cfg := config.Stripe{SecretKey: "sk_test_123", WebhookSecret: webhookSecret, APIURL: api,
			EvaluationDomainPeriod: 90 * 24 * time.Hour, Catalogue: config.DefaultCatalogue}
		s, err := purchase.New(cfg, e.store, e.svc, e.portal, e.portal.BaseURL, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// buy posts the buy form as the signed-in client and returns where it was sent and
// the order it made.
func (e *portalEnv) buy(t *testing.T, c *http.Client, customerID, item, license string) (string, *entitlements.Order) {
	t.Helper()
	csrf := e.csrf(t, c, "/portal/")
	resp, err := c.PostForm(e.ts.URL+"/portal/buy", url.Values{"_csrf": {csrf}, "item": {item}, "license": {license}})
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("buy %s: %d %.500s", item, resp.StatusCode, body)
	}
	var id string
	e.store.Pool().QueryRow(context.Background(), `SELECT id FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 1`, customerID).Scan(&id)
	o, err := e.store.GetOrder(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Get("Location"), o
}

// sessionOf is the Checkout Session object Stripe would send for an order.
func sessionOf(o *entitlements.Order, paymentStatus string) map[string]any {
	return map[string]any{"id": o.CheckoutSessionID, "object": "checkout.session", "client_reference_id": o.ID,
		"amount_total": o.Amount, "currency": o.Currency, "payment_status": paymentStatus, "status": "complete", "mode": "payment",
		"payment_intent": "pi_" + strings.ToLower(o.ID[4:]), "metadata": map[string]string{"order_id": o.ID}}
}

// event signs a Stripe event with the webhook secret (at ts; zero: now).
func event(t *testing.T, id, typ string, obj map[string]any, secret string, ts time.Time) (payload []byte, header string) {
	t.Helper()
	if ts.IsZero() {
		ts = time.Now()
	}
	payload, err := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": stripe.APIVersion, "type": typ,
		"created": ts.Unix(), "data": map[string]any{"object": obj}, "livemode": false, "pending_webhooks": 1})
	if err != nil {
		t.Fatal(err)
	}
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: ts})
	return signed.Payload, signed.Header
}

func (e *portalEnv) deliver(t *testing.T, payload []byte, header string) leaseResp {
	t.Helper()
	req, _ := http.NewRequest("POST", e.ts.URL+"/v1/stripe/webhook", strings.NewReader(string(payload)))
	req.Header.Set("Content-Type", "application/json")
	if header != "" {
		req.Header.Set("Stripe-Signature", header)
	}
	return do(t, req)
}

func (e *portalEnv) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *portalEnv) order(t *testing.T, id string) *entitlements.Order {
	t.Helper()
	o, err := e.store.GetOrder(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestStripeExactlyOnce: the same paid checkout.session.completed delivered 20 times
// at once, and the success page called 5 times meanwhile, issue exactly one license,
// one order fulfilled, one fulfilment in the audit trail.
func TestStripeExactlyOnce(t *testing.T) {
	e := mustShop(t, true)
	a := e.tenant(t, "Acme", "ops@acme.test")
	c := e.signIn(t, a.email)
	to, o := e.buy(t, c, a.customer.ID, "pilot", "")
	if !strings.HasPrefix(to, "https://checkout.stripe.com/") || o.CheckoutSessionID == "" || o.Amount != 250000 || o.Currency != "usd" || o.Status != "pending" {
		t.Fatalf("after buy: → %s, order %+v", to, o)
	}
	payload, header := event(t, "evt_race_1", "checkout.session.completed", sessionOf(o, "paid"), webhookSecret, time.Time{})
	var wg sync.WaitGroup
	statuses := make(chan int, 25)
	start := make(chan struct{})
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses <- e.deliver(t, payload, header).status
		}()
	}
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := c.Get(e.ts.URL + "/portal/orders/" + o.ID + "?session_id=" + o.CheckoutSessionID)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != 200 {
			t.Fatalf("a delivery or success page answered %d", st)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM licenses l JOIN entitlements en ON en.id = l.entitlement_id WHERE en.order_id = $1`, o.ID); n != 1 {
		t.Fatalf("%d licenses for one order", n)
	}
	if n := e.count(t, `SELECT count(*) FROM entitlements WHERE order_id = $1`, o.ID); n != 1 {
		t.Fatalf("%d entitlements for one order", n)
	}
	got := e.order(t, o.ID)
	if got.Status != entitlements.OrderFulfilled || got.FulfilledLicenseID == "" {
		t.Fatalf("order: %+v", got)
	}
	for action, want := range map[string]int{"order.fulfil": 1} {
		if n := e.count(t, `SELECT count(*) FROM audit_events WHERE action = $1 AND subject = $2`, action, o.ID); n != want {
			t.Fatalf("%d %s events", n, action)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM audit_events WHERE action = 'license.issue' AND subject = $1`, got.FulfilledLicenseID); n != 1 {
		t.Fatalf("%d license.issue events", n)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_events a JOIN entitlements en ON en.id = a.subject
		WHERE en.order_id = $1 AND a.action = 'entitlement.approve' AND a.actor = 'policy:catalogue'`, o.ID); n != 1 {
		t.Fatalf("%d catalogue-policy approvals", n)
	}
	if n := e.count(t, `SELECT count(*) FROM stripe_events WHERE id = 'evt_race_1'`); n != 1 {
		t.Fatalf("event recorded %d times", n)
	}
	// The license is the pilot, self-service, and verifies.
	l, _ := e.store.GetLicense(context.Background(), got.FulfilledLicenseID)
	if l.SKU != "pilot-30d" || l.CustomerID != a.customer.ID {
		t.Fatalf("license %s %s", l.SKU, l.CustomerID)
	}
	if r := e.verifyBytes(t, l.File, "genai-smart-router"); r.Reason != verify.ReasonLeaseRequired {
		t.Fatalf("the pilot verifies as %s/%s (lease-required expected without a lease)", r.Status, r.Reason)
	}
}

// TestStripeWebhookRefusals: unsigned, wrongly signed and stale webhooks are 400 and
// change nothing; an unknown order and a mismatched amount change nothing either.
func TestStripeWebhookRefusals(t *testing.T) {
	e := mustShop(t, false)
	a := e.tenant(t, "Acme", "ops@acme.test")
	c := e.signIn(t, a.email)
	_, o := e.buy(t, c, a.customer.ID, "pilot", "")
	good := sessionOf(o, "paid")
	unchanged := func(what string) {
		t.Helper()
		if n := e.count(t, `SELECT count(*) FROM stripe_events`); n != 0 {
			t.Fatalf("%s: %d events recorded", what, n)
		}
		if got := e.order(t, o.ID); got.Status != "pending" || got.FulfilledLicenseID != "" {
			t.Fatalf("%s: order %s", what, got.Status)
		}
		if n := e.count(t, `SELECT count(*) FROM entitlements WHERE order_id = $1`, o.ID); n != 0 {
			t.Fatalf("%s: an entitlement was opened", what)
		}
	}
	payload, _ := event(t, "evt_1", "checkout.session.completed", good, webhookSecret, time.Time{})
	wantProblem(t, e.deliver(t, payload, ""), 400, "invalid")
	unchanged("unsigned")
	payload, header := event(t, "evt_2", "checkout.session.completed", good, "whsec_wrong", time.Time{})
	wantProblem(t, e.deliver(t, payload, header), 400, "invalid")
	unchanged("wrong secret")
	payload, header = event(t, "evt_3", "checkout.session.completed", good, webhookSecret, time.Now().Add(-10*time.Minute))
	wantProblem(t, e.deliver(t, payload, header), 400, "invalid")
	unchanged("stale")
	// A signed event whose body was altered after signing.
	payload, header = event(t, "evt_4", "checkout.session.completed", good, webhookSecret, time.Time{})
	wantProblem(t, e.deliver(t, []byte(strings.Replace(string(payload), `"amount_total":250000`, `"amount_total":1`, 1)), header), 400, "invalid")
	unchanged("altered")
	// Signed, but for an unknown order: 503 so Stripe redelivers (it may be an order
	// this database does not have yet), kept for staff, nothing else changed.
	m := sessionOf(o, "paid")
	m["client_reference_id"], m["metadata"] = "ord_01HZY3QK8Y0000000000000000", map[string]string{}
	payload, header = event(t, "evt_unknown_order", "checkout.session.completed", m, webhookSecret, time.Time{})
	wantProblem(t, e.deliver(t, payload, header), 503, "unavailable")
	unchanged("unknown order")
	if n := e.count(t, `SELECT count(*) FROM stripe_pending_events WHERE event_id = 'evt_unknown_order'`); n != 1 {
		t.Fatalf("the unmatched event was kept %d times", n)
	}
	// Signed, but naming no order, or with another amount, currency or session: no
	// retry can fix them, so 200, logged, nothing changed.
	for name, edit := range map[string]func(m map[string]any){
		"no order": func(m map[string]any) {
			m["client_reference_id"] = ""
			m["metadata"] = map[string]string{}
		},
		"amount":   func(m map[string]any) { m["amount_total"] = int64(100) },
		"currency": func(m map[string]any) { m["currency"] = "eur" },
		"session":  func(m map[string]any) { m["id"] = "cs_test_other" },
	} {
		m := sessionOf(o, "paid")
		edit(m)
		payload, header := event(t, "evt_"+strings.ReplaceAll(name, " ", "_"), "checkout.session.completed", m, webhookSecret, time.Time{})
		if r := e.deliver(t, payload, header); r.status != 200 {
			t.Fatalf("%s: %d", name, r.status)
		}
		unchanged(name)
	}
}

// TestStripeAsyncPayments: an unpaid completed session issues nothing until
// async_payment_succeeded; async_payment_failed issues nothing.
func TestStripeAsyncPayments(t *testing.T) {
	e := mustShop(t, false)
	a := e.tenant(t, "Acme", "ops@acme.test")
	c := e.signIn(t, a.email)
	_, o := e.buy(t, c, a.customer.ID, "pilot", "")
	p, h := event(t, "evt_a1", "checkout.session.completed", sessionOf(o, "unpaid"), webhookSecret, time.Time{})
	e.deliver(t, p, h)
	if got := e.order(t, o.ID); got.Status != entitlements.OrderProcessing || got.FulfilledLicenseID != "" {
		t.Fatalf("unpaid: %s", got.Status)
	}
	// The success page says processing (stripe-mock's bundled session is unpaid).
	resp, _ := c.Get(e.ts.URL + "/portal/orders/" + o.ID)
	contains(t, readBody(t, resp), "Payment processing")
	p, h = event(t, "evt_a2", "checkout.session.async_payment_succeeded", sessionOf(o, "paid"), webhookSecret, time.Time{})
	e.deliver(t, p, h)
	if got := e.order(t, o.ID); got.Status != entitlements.OrderFulfilled || got.FulfilledLicenseID == "" {
		t.Fatalf("after async success: %s", got.Status)
	}
	_, o2 := e.buy(t, c, a.customer.ID, "pilot", "")
	p, h = event(t, "evt_a3", "checkout.session.completed", sessionOf(o2, "unpaid"), webhookSecret, time.Time{})
	e.deliver(t, p, h)
	p, h = event(t, "evt_a4", "checkout.session.async_payment_failed", sessionOf(o2, "unpaid"), webhookSecret, time.Time{})
	e.deliver(t, p, h)
	if got := e.order(t, o2.ID); got.Status != entitlements.OrderFailed || got.FulfilledLicenseID != "" {
		t.Fatalf("after async failure: %s", got.Status)
	}
	if n := e.count(t, `SELECT count(*) FROM entitlements WHERE order_id = $1`, o2.ID); n != 0 {
		t.Fatal("a failed payment opened an entitlement")
	}
}

// TestStripeRefundSuspends: a refund suspends the license (never a silent revoke), puts
// the order in the staff queue, and the next bundle lists the suspension; a dispute
// does the same.
func TestStripeRefundSuspends(t *testing.T) {
	e := mustShop(t, false)
	a := e.tenant(t, "Acme", "ops@acme.test")
	c := e.signIn(t, a.email)
	fulfilled := func(evt string) *entitlements.Order {
		_, o := e.buy(t, c, a.customer.ID, "pilot", "")
		p, h := event(t, evt, "checkout.session.completed", sessionOf(o, "paid"), webhookSecret, time.Time{})
		e.deliver(t, p, h)
		return e.order(t, o.ID)
	}
	o := fulfilled("evt_r1")
	p, h := event(t, "evt_r2", "charge.refunded", map[string]any{"id": "ch_1", "object": "charge", "payment_intent": o.PaymentIntent,
		"amount": o.Amount, "amount_refunded": o.Amount, "refunded": true, "currency": "usd"}, webhookSecret, time.Time{})
	if r := e.deliver(t, p, h); r.status != 200 {
		t.Fatalf("refund: %d %s", r.status, r.body)
	}
	l, _ := e.store.GetLicense(context.Background(), o.FulfilledLicenseID)
	if l.Status != entitlements.LicenseSuspended || !strings.Contains(l.StatusReason, "refund") {
		t.Fatalf("license after refund: %s %q", l.Status, l.StatusReason)
	}
	got := e.order(t, o.ID)
	if got.Status != entitlements.OrderRefunded || got.ReviewReason == "" {
		t.Fatalf("order after refund: %+v", got)
	}
	queue, _ := e.store.ReviewQueue(context.Background(), 10)
	if len(queue) != 1 || queue[0].ID != o.ID {
		t.Fatalf("review queue: %v", queue)
	}
	if err := e.svc.ReviewOrder(context.Background(), o.ID, "refund accepted", e.maker); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
		t.Fatalf("an issuer reviewed an order: %v", err)
	}
	b, err := e.svc.PublishBundle(context.Background(), "genai-smart-router", e.check)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := verify.ParseBundleFile(b.File, e.keyset)
	if err != nil {
		t.Fatal(err)
	}
	if en, ok := vb.Lookup(l.ID); !ok || en.Status != verify.StatusSuspended {
		t.Fatalf("the next bundle does not list the suspension: %+v %v", en, ok)
	}
	o2 := fulfilled("evt_d1")
	p, h = event(t, "evt_d2", "charge.dispute.created", map[string]any{"id": "dp_1", "object": "dispute", "payment_intent": o2.PaymentIntent,
		"charge": "ch_2", "amount": o2.Amount, "currency": "usd", "reason": "fraudulent", "status": "needs_response"}, webhookSecret, time.Time{})
	e.deliver(t, p, h)
	if l, _ := e.store.GetLicense(context.Background(), o2.FulfilledLicenseID); l.Status != entitlements.LicenseSuspended {
		t.Fatalf("license after dispute: %s", l.Status)
	}
	if err := e.svc.ReviewOrder(context.Background(), o.ID, "refund accepted; license stays suspended", e.check); err != nil {
		t.Fatal(err)
	}
	if queue, _ := e.store.ReviewQueue(context.Background(), 10); len(queue) != 1 || queue[0].ID != o2.ID {
		t.Fatalf("queue after review: %v", queue)
	}
	// Redelivery of the refund does nothing more.
	before := e.count(t, `SELECT count(*) FROM audit_events`)
	p, h = event2(t, "evt_r2", o, webhookSecret)
	e.deliver(t, p, h)
	if after := e.count(t, `SELECT count(*) FROM audit_events`); after != before {
		t.Fatalf("a redelivered event wrote %d audit events", after-before)
	}
}

// TestStripeRefundBeforeFulfilment: Stripe does not order its events. An order paid
// but not fulfilled yet (its fulfilment stopped midway) and then refunded is never
// fulfilled by a later checkout.session.completed: no entitlement, no license.
func TestStripeRefundBeforeFulfilment(t *testing.T) {
	e := mustShop(t, false)
	a := e.tenant(t, "Acme", "ops@acme.test")
	c := e.signIn(t, a.email)
	licenses := e.count(t, `SELECT count(*) FROM licenses WHERE customer_id = $1`, a.customer.ID)
	_, o := e.buy(t, c, a.customer.ID, "pilot", "")
	pi := sessionOf(o, "paid")["payment_intent"].(string)
	// What the fulfilment does first; it stops here (the process died).
	if got, err := e.store.MarkPayment(context.Background(), o.ID, entitlements.OrderPaid, []string{entitlements.OrderPending}, pi); err != nil || got.Status != entitlements.OrderPaid {
		t.Fatalf("move to paid: %v %v", got, err)
	}
	p, h := event(t, "evt_rb1", "charge.refunded", map[string]any{"id": "ch_rb", "object": "charge", "payment_intent": pi,
		"amount": o.Amount, "amount_refunded": o.Amount, "refunded": true, "currency": "usd"}, webhookSecret, time.Time{})
	if r := e.deliver(t, p, h); r.status != 200 {
		t.Fatalf("refund: %d %s", r.status, r.body)
	}
	p, h = event(t, "evt_rb2", "checkout.session.completed", sessionOf(o, "paid"), webhookSecret, time.Time{})
	if r := e.deliver(t, p, h); r.status != 200 {
		t.Fatalf("completed after refund: %d %s", r.status, r.body)
	}
	resp, _ := c.Get(e.ts.URL + "/portal/orders/" + o.ID)
	readBody(t, resp)
	if got := e.order(t, o.ID); got.Status != entitlements.OrderRefunded || got.FulfilledLicenseID != "" {
		t.Fatalf("order after refund and a late completion: %s %q", got.Status, got.FulfilledLicenseID)
	}
	if n := e.count(t, `SELECT count(*) FROM entitlements WHERE order_id = $1`, o.ID); n != 0 {
		t.Fatalf("a refunded order opened %d entitlements", n)
	}
	if n := e.count(t, `SELECT count(*) FROM licenses WHERE customer_id = $1`, a.customer.ID); n != licenses {
		t.Fatalf("a refunded order issued %d licenses", n-licenses)
	}
}

func event2(t *testing.T, id string, o *entitlements.Order, secret string) ([]byte, string) {
	return event(t, id, "charge.refunded", map[string]any{"id": "ch_1", "object": "charge", "payment_intent": o.PaymentIntent,
		"amount": o.Amount, "amount_refunded": o.Amount, "refunded": true, "currency": "usd"}, secret, time.Time{})
}

// TestStripeTopUpSupersedes: a credit pack bought for a license issues a successor with
// the pack's budget that supersedes it; 20 deliveries at once and 5 success pages
// meanwhile all answer 200 (issue 19, case 1).
func TestStripeTopUpSupersedes(t *testing.T) {
	e := mustShop(t, false)
	a := e.tenant(t, "Acme", "ops@acme.test")
	c := e.signIn(t, a.email)
	_, o := e.buy(t, c, a.customer.ID, "credit-pack-5m", a.router.ID)
	if o.Kind != entitlements.OrderTopUp || o.LicenseID != a.router.ID || o.Amount != 50000 {
		t.Fatalf("order %+v", o)
	}
	p, h := event(t, "evt_t1", "checkout.session.completed", sessionOf(o, "paid"), webhookSecret, time.Time{})
	var wg sync.WaitGroup
	statuses := make(chan int, 25)
	for i := range 25 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i < 20 {
				statuses <- e.deliver(t, p, h).status
				return
			}
			resp, err := c.Get(e.ts.URL + "/portal/orders/" + o.ID)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != 200 {
			t.Fatalf("a delivery or success page of a paid top-up answered %d", st)
		}
	}
	got := e.order(t, o.ID)
	l, err := e.store.GetLicense(context.Background(), got.FulfilledLicenseID)
	if err != nil {
		t.Fatal(err)
	}
	if l.Supersedes != a.router.ID || l.Terms.Limits["token_budget"] != 5_000_000 || l.SKU != "credit-pack-5m" {
		t.Fatalf("top-up: supersedes %s, budget %d, sku %s", l.Supersedes, l.Terms.Limits["token_budget"], l.SKU)
	}
	old, _ := e.store.GetLicense(context.Background(), a.router.ID)
	if old.SupersededBy != l.ID {
		t.Fatalf("old license superseded by %q", old.SupersededBy)
	}
	// Another customer's license can't be topped up, and the price is the catalogue's.
	b := e.tenant(t, "Globex", "ops@globex.test")
	csrf := e.csrf(t, c, "/portal/")
	resp, _ := c.PostForm(e.ts.URL+"/portal/buy", url.Values{"_csrf": {csrf}, "item": {"credit-pack-5m"}, "license": {b.router.ID}, "price": {"1"}})
	if resp.StatusCode != 404 {
		t.Fatalf("buying for another customer's license: %d", resp.StatusCode)
	}
	resp.Body.Close()
	if n := e.count(t, `SELECT count(*) FROM orders WHERE license_id = $1`, b.router.ID); n != 0 {
		t.Fatal("an order was recorded for another customer's license")
	}
}

// TestPurchaseHiddenWithoutStripe: without keys there is no buy page, no webhook, and
// the license page says to contact sales.
func TestPurchaseHiddenWithoutStripe(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme", "ops@acme.test")
	c := e.signIn(t, a.email)
	for _, p := range []string{"/portal/buy", "/portal/evaluate", "/portal/orders/ord_01HZY3QK8Y0000000000000000"} {
		resp, _ := c.Get(e.ts.URL + p)
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
	if r := e.deliver(t, []byte(`{}`), "t=1,v1=x"); r.status != 404 {
		t.Fatalf("webhook without Stripe: %d", r.status)
	}
	resp, _ := c.Get(e.ts.URL + "/portal/licenses/" + a.router.ID)
	body := readBody(t, resp)
	contains(t, body, `id="contact-sales"`)
	if strings.Contains(body, "Buy a credit pack") || strings.Contains(body, "Evaluate or buy") {
		t.Fatal("purchase shown without Stripe")
	}
}

// TestEvaluationRaces: eight visitors of one email domain start their evaluations at
// once, and one evaluation link is spent by four tabs at once: exactly one evaluation
// per domain is issued, each link works once, and a refused start leaves no customer,
// no portal user, no order and no spent link.
func TestEvaluationRaces(t *testing.T) {
	e := mustShop(t, false)
	ctx := context.Background()
	link := func(email string) string {
		t.Helper()
		tok, err := e.store.CreateEvaluationRequest(ctx, email, "Initech", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	start := func(tokens []string) (ok int, errs []error) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, tok := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := e.shop.StartEvaluation(ctx, tok)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					ok++
				} else {
					errs = append(errs, err)
				}
			}()
		}
		wg.Wait()
		return ok, errs
	}
	var tokens []string
	for i := range 8 {
		tokens = append(tokens, link(fmt.Sprintf("dev%d@initech.test", i)))
	}
	ok, errs := start(tokens)
	if ok != 1 || len(errs) != 7 {
		t.Fatalf("%d evaluations started for one domain (errors: %v)", ok, errs)
	}
	for _, err := range errs {
		if entitlements.ErrorCode(err) != entitlements.ECONFLICT || !strings.Contains(err.Error(), "initech.test") {
			t.Fatalf("refusal: %v", err)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM customers WHERE email LIKE '%@initech.test'`); n != 1 {
		t.Fatalf("%d customers for one domain", n)
	}
	if n := e.count(t, `SELECT count(*) FROM portal_users WHERE email LIKE '%@initech.test'`); n != 1 {
		t.Fatalf("%d portal users for one domain", n)
	}
	if n := e.count(t, `SELECT count(*) FROM orders WHERE kind = 'evaluation' AND fulfilled_license_id IS NOT NULL`); n != 1 {
		t.Fatalf("%d evaluations fulfilled", n)
	}
	// A refused start leaves its link unspent (it changed nothing).
	if n := e.count(t, `SELECT count(*) FROM evaluation_requests WHERE email LIKE '%@initech.test' AND used_at IS NULL`); n != 7 {
		t.Fatalf("%d unspent links, want the 7 refused", n)
	}
	// One link, four tabs: it works once.
	tok := link("ops@globex.test")
	ok, errs = start([]string{tok, tok, tok, tok})
	if ok != 1 || len(errs) != 3 {
		t.Fatalf("one link started %d evaluations (errors: %v)", ok, errs)
	}
	if n := e.count(t, `SELECT count(*) FROM customers WHERE email = 'ops@globex.test'`); n != 1 {
		t.Fatalf("%d customers from one link", n)
	}
}
