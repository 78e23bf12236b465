package purchase_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/metrum/licensing/internal/config"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/purchase"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/internal/stripetest"
	"github.com/metrum/licensing/verify"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const secret = "whsec_purchase_test"

var (
	maker   = &entitlements.Staff{Email: "maker@m.test", Role: entitlements.RoleIssuer}
	checker = &entitlements.Staff{Email: "checker@m.test", Role: entitlements.RoleApprover}
	admin   = &entitlements.Staff{Email: "admin@m.test", Role: entitlements.RoleAdmin}
)

// env is a shop over a real database and stripe-mock, with one customer holding an
// enterprise router license.
type env struct {
	store  *storage.Store
	iss    *issuance.Service
	shop   *purchase.Service
	buyer  *entitlements.Principal
	router *entitlements.License
	n      int
}

func mustEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	store := pgtest.NewStore(t)
	kek, err := signing.NewKEKFile(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	iss := issuance.New(store, issuance.Config{Keys: signing.NewKeys(signing.NewFileBackend(filepath.Join(t.TempDir(), "keys"), kek)),
		Issuer: "metrum", RenewURL: "https://licensing.metrum.test/v1/leases", MakerChecker: true, Changeover: 7 * 24 * time.Hour})
	if _, err := iss.GenerateKey(ctx, entitlements.KeyInput{Product: "genai-smart-router", Alg: verify.AlgEdDSA,
		Purposes: []verify.Purpose{verify.PurposeLicense, verify.PurposeRevocation}}, true, admin); err != nil {
		t.Fatal(err)
	}
	shop, err := purchase.New(config.Stripe{SecretKey: "sk_test_123", WebhookSecret: secret, APIURL: stripetest.Start(t, ""),
		EvaluationDomainPeriod: 90 * 24 * time.Hour, Catalogue: config.DefaultCatalogue},
		store, iss, portal.New(store, portal.Config{}), "https://licensing.metrum.test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: store, iss: iss, shop: shop}
	c := &entitlements.Customer{Name: "Acme"}
	if err := iss.CreateCustomer(ctx, c, maker); err != nil {
		t.Fatal(err)
	}
	e.buyer = &entitlements.Principal{Kind: entitlements.PrincipalPortalUser, CustomerID: c.ID, Actor: "ops@acme.test"}
	e.router = e.issue(t, "enterprise-annual")
	return e
}

// issue issues a staff-made license of a template for the customer.
func (e *env) issue(t *testing.T, template string) *entitlements.License {
	t.Helper()
	ctx := context.Background()
	ent, err := e.iss.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: e.buyer.CustomerID, Template: template}, maker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.iss.Approve(ctx, ent.ID, checker); err != nil {
		t.Fatal(err)
	}
	l, err := e.iss.Issue(ctx, ent.ID, maker)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (e *env) buy(t *testing.T, item, licenseID string) *entitlements.Order {
	t.Helper()
	_, o, err := e.shop.Buy(context.Background(), e.buyer, item, licenseID)
	if err != nil {
		t.Fatalf("buy %s for %s: %v", item, licenseID, err)
	}
	return o
}

func pi(o *entitlements.Order) string { return "pi_" + strings.ToLower(o.ID[4:]) }

func session(o *entitlements.Order, paymentStatus string) map[string]any {
	return map[string]any{"id": o.CheckoutSessionID, "object": "checkout.session", "client_reference_id": o.ID,
		"amount_total": o.Amount, "currency": o.Currency, "payment_status": paymentStatus, "status": "complete", "mode": "payment",
		"payment_intent": pi(o), "metadata": map[string]string{"order_id": o.ID}}
}

func refund(o *entitlements.Order, amount int64) map[string]any {
	return map[string]any{"id": "ch_" + o.ID[4:], "object": "charge", "payment_intent": pi(o), "amount": o.Amount,
		"amount_refunded": amount, "refunded": amount >= o.Amount, "currency": o.Currency}
}

func dispute(o *entitlements.Order) map[string]any {
	return map[string]any{"id": "dp_" + o.ID[4:], "object": "dispute", "payment_intent": pi(o), "charge": "ch_" + o.ID[4:],
		"amount": o.Amount, "currency": o.Currency, "reason": "fraudulent", "status": "needs_response"}
}

// signed is a Stripe event signed with the webhook secret.
func (e *env) signed(t *testing.T, typ string, obj map[string]any) (payload []byte, header, id string) {
	t.Helper()
	e.n++
	id = fmt.Sprintf("evt_%s_%d_%d", strings.ReplaceAll(typ, ".", "_"), time.Now().UnixNano(), e.n)
	payload, err := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": stripe.APIVersion, "type": typ,
		"created": time.Now().Unix(), "data": map[string]any{"object": obj}, "livemode": false, "pending_webhooks": 1})
	if err != nil {
		t.Fatal(err)
	}
	s := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: time.Now()})
	return s.Payload, s.Header, id
}

// deliver delivers a new event once and returns what the webhook answered (an error
// is a non-2xx answer).
func (e *env) deliver(t *testing.T, typ string, obj map[string]any) (string, error) {
	t.Helper()
	p, h, _ := e.signed(t, typ, obj)
	return e.shop.HandleWebhook(context.Background(), p, h)
}

func (e *env) mustDeliver(t *testing.T, typ string, obj map[string]any) string {
	t.Helper()
	out, err := e.deliver(t, typ, obj)
	if err != nil {
		t.Fatalf("%s answered an error (Stripe would see a %s): %v", typ, entitlements.ErrorCode(err), err)
	}
	return out
}

func (e *env) order(t *testing.T, id string) *entitlements.Order {
	t.Helper()
	o, err := e.store.GetOrder(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (e *env) license(t *testing.T, id string) *entitlements.License {
	t.Helper()
	l, err := e.store.GetLicense(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// noOrderStuck: every paid order ended fulfilled or in the staff queue.
func (e *env) noOrderStuck(t *testing.T) {
	t.Helper()
	if n := e.count(t, `SELECT count(*) FROM orders WHERE status = 'paid'`); n != 0 {
		t.Fatalf("%d orders are paid and neither fulfilled nor in the queue", n)
	}
	if n := e.count(t, `SELECT count(*) FROM orders WHERE status = 'held' AND (review_reason = '' OR reviewed_by <> '')`); n != 0 {
		t.Fatalf("%d held orders are not in the staff queue", n)
	}
}

func (e *env) queued(t *testing.T, id string) bool {
	t.Helper()
	q, err := e.iss.OrderQueue(context.Background(), 100, checker)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range q {
		if o.ID == id {
			return true
		}
	}
	return false
}

// race runs n calls at once and returns their errors.
func race(n int, call func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = call(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// TestConcurrentTopUpDeliveriesAllSucceed (case 1): 20 signed deliveries of the
// same paid top-up at once, and 5 success pages meanwhile, all answer 2xx with the
// same license; exactly one license, one fulfilment, one event recorded.
func TestConcurrentTopUpDeliveriesAllSucceed(t *testing.T) {
	e := mustEnv(t)
	o := e.buy(t, "credit-pack-5m", e.router.ID)
	payload, header, id := e.signed(t, "checkout.session.completed", session(o, "paid"))
	pages := make([]*purchase.Result, 5)
	errs := race(25, func(i int) error {
		if i < 20 {
			_, err := e.shop.HandleWebhook(context.Background(), payload, header)
			return err
		}
		res, err := e.shop.OrderPage(context.Background(), e.buyer, o.ID)
		pages[i-20] = res
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d answered %s: %v", i, entitlements.ErrorCode(err), err)
		}
	}
	got := e.order(t, o.ID)
	if got.Status != entitlements.OrderFulfilled || got.FulfilledLicenseID == "" {
		t.Fatalf("order %s %q", got.Status, got.FulfilledLicenseID)
	}
	if n := e.count(t, `SELECT count(*) FROM licenses WHERE supersedes = $1`, e.router.ID); n != 1 {
		t.Fatalf("%d successors of the topped-up license", n)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_events WHERE action = 'order.fulfil' AND subject = $1`, o.ID); n != 1 {
		t.Fatalf("%d fulfilments audited", n)
	}
	if n := e.count(t, `SELECT count(*) FROM stripe_events WHERE id = $1`, id); n != 1 {
		t.Fatalf("event recorded %d times", n)
	}
	// A page load after it all answers with the license; so does a redelivery.
	res, err := e.shop.OrderPage(context.Background(), e.buyer, o.ID)
	if err != nil || res.License == nil || res.License.ID != got.FulfilledLicenseID {
		t.Fatalf("order page after fulfilment: %+v %v", res, err)
	}
	if out, err := e.shop.HandleWebhook(context.Background(), payload, header); err != nil || out != "duplicate" {
		t.Fatalf("redelivery: %q %v", out, err)
	}
	e.noOrderStuck(t)
}

// TestSecondTopUpAppliesToTheCurrentLicense (case 2): two credit packs bought for
// the same license, fulfilled one after the other and then both at once: each
// applies to the line's current license when it is fulfilled, the second carries
// both budgets, and every delivery answers 2xx.
func TestSecondTopUpAppliesToTheCurrentLicense(t *testing.T) {
	e := mustEnv(t)
	first, second := e.buy(t, "credit-pack-5m", e.router.ID), e.buy(t, "credit-pack-5m", e.router.ID)
	e.mustDeliver(t, "checkout.session.completed", session(first, "paid"))
	// Stripe retries the second one a few times; each answers 2xx with the same result.
	var licenseID string
	for i := range 3 {
		if out := e.mustDeliver(t, "checkout.session.completed", session(second, "paid")); out != entitlements.OrderFulfilled {
			t.Fatalf("delivery %d of the second top-up: %q", i, out)
		}
		got := e.order(t, second.ID)
		if licenseID != "" && got.FulfilledLicenseID != licenseID {
			t.Fatalf("delivery %d answered another license", i)
		}
		licenseID = got.FulfilledLicenseID
	}
	a, b := e.license(t, e.order(t, first.ID).FulfilledLicenseID), e.license(t, licenseID)
	if a.Supersedes != e.router.ID || b.Supersedes != a.ID {
		t.Fatalf("line: %s ← %s ← %s", e.router.ID, a.Supersedes, b.Supersedes)
	}
	if a.Terms.Limits["token_budget"] != 5_000_000 || b.Terms.Limits["token_budget"] != 10_000_000 {
		t.Fatalf("budgets %d then %d: two packs bought together add up", a.Terms.Limits["token_budget"], b.Terms.Limits["token_budget"])
	}
	if got := e.order(t, second.ID); got.LicenseID != a.ID {
		t.Fatalf("second order still for %s", got.LicenseID)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_events WHERE action = 'order.retarget' AND subject = $1`, second.ID); n != 1 {
		t.Fatalf("%d retarget events", n)
	}
	// A pack bought for the current license after it was issued replaces the budget,
	// as the product documents.
	third := e.buy(t, "credit-pack-5m", b.ID)
	e.mustDeliver(t, "checkout.session.completed", session(third, "paid"))
	if c := e.license(t, e.order(t, third.ID).FulfilledLicenseID); c.Terms.Limits["token_budget"] != 5_000_000 || c.Supersedes != b.ID {
		t.Fatalf("a pack bought for the current license: budget %d, supersedes %s", c.Terms.Limits["token_budget"], c.Supersedes)
	}

	// Two packs of one line completed at once, ten deliveries each.
	f := mustEnv(t)
	x, y := f.buy(t, "credit-pack-5m", f.router.ID), f.buy(t, "credit-pack-25m", f.router.ID)
	px, hx, _ := f.signed(t, "checkout.session.completed", session(x, "paid"))
	py, hy, _ := f.signed(t, "checkout.session.completed", session(y, "paid"))
	for i, err := range race(20, func(i int) error {
		p, h := px, hx
		if i%2 == 1 {
			p, h = py, hy
		}
		_, err := f.shop.HandleWebhook(context.Background(), p, h)
		return err
	}) {
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	lx, ly := f.license(t, f.order(t, x.ID).FulfilledLicenseID), f.license(t, f.order(t, y.ID).FulfilledLicenseID)
	firstL, lastL := lx, ly
	if ly.Supersedes == f.router.ID {
		firstL, lastL = ly, lx
	}
	if firstL.Supersedes != f.router.ID || lastL.Supersedes != firstL.ID {
		t.Fatalf("concurrent packs: %s ← %s, %s ← %s", firstL.Supersedes, firstL.ID, lastL.Supersedes, lastL.ID)
	}
	if lastL.Terms.Limits["token_budget"] != 30_000_000 {
		t.Fatalf("the later pack's budget is %d, want 5M + 25M", lastL.Terms.Limits["token_budget"])
	}
	f.noOrderStuck(t)
	e.noOrderStuck(t)
}

// TestRenewalsAreSoldForTheCurrentLicenseOnly (cases 3 and 4): a superseded,
// revoked, suspended or expired license is offered nothing and a purchase for it is
// refused with the reason, recording no order; the current license of a topped-up
// line renews its plan.
func TestRenewalsAreSoldForTheCurrentLicenseOnly(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	pack := e.buy(t, "credit-pack-5m", e.router.ID)
	e.mustDeliver(t, "checkout.session.completed", session(pack, "paid"))
	current := e.license(t, e.order(t, pack.ID).FulfilledLicenseID)
	superseded := e.license(t, e.router.ID)
	revoked := e.issue(t, "enterprise-annual")
	if _, err := e.iss.ChangeStatus(ctx, revoked.ID, entitlements.ActionRevoke, "contract ended", time.Time{}, checker); err != nil {
		t.Fatal(err)
	}
	suspended := e.issue(t, "enterprise-annual")
	if _, err := e.iss.ChangeStatus(ctx, suspended.ID, entitlements.ActionSuspend, "invoice overdue", time.Time{}, checker); err != nil {
		t.Fatal(err)
	}
	orders := e.count(t, `SELECT count(*) FROM orders`)
	for name, l := range map[string]*entitlements.License{"superseded": superseded, "revoked": e.license(t, revoked.ID), "suspended": e.license(t, suspended.ID)} {
		items, err := e.shop.ItemsFor(ctx, l)
		if err != nil || len(items) != 0 {
			t.Fatalf("%s license offered %v (%v)", name, items, err)
		}
		for _, item := range []string{"renew-enterprise", "credit-pack-5m"} {
			_, _, err := e.shop.Buy(ctx, e.buyer, item, l.ID)
			if entitlements.ErrorCode(err) != entitlements.ECONFLICT || !strings.Contains(err.Error(), name[:5]) && !strings.Contains(err.Error(), "replaced") {
				t.Fatalf("%s for a %s license: %v", item, name, err)
			}
		}
	}
	if n := e.count(t, `SELECT count(*) FROM orders`); n != orders {
		t.Fatalf("%d orders recorded by refused purchases", n-orders)
	}
	// Expired: the status truth at the shop's clock.
	e.shop.Now = func() time.Time { return current.ExpiresAt.Add(time.Hour) }
	if err := purchase.NotCurrent(current, e.shop.Now()); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired license: %v", err)
	}
	if items, _ := e.shop.ItemsFor(ctx, current); len(items) != 0 {
		t.Fatalf("an expired license offered %v", items)
	}
	e.shop.Now = nil
	// The current license (a credit pack) renews the line's plan, with its terms.
	items, err := e.shop.ItemsFor(ctx, current)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	if strings.Join(ids, " ") != "renew-enterprise credit-pack-5m credit-pack-25m" {
		t.Fatalf("offered for the current license: %v", ids)
	}
	renewal := e.buy(t, "renew-enterprise", current.ID)
	e.mustDeliver(t, "checkout.session.completed", session(renewal, "paid"))
	r := e.license(t, e.order(t, renewal.ID).FulfilledLicenseID)
	if r.SKU != "enterprise-annual" || r.Supersedes != current.ID || !r.ExpiresAt.After(current.ExpiresAt) {
		t.Fatalf("renewal: %s supersedes %s until %s", r.SKU, r.Supersedes, r.ExpiresAt)
	}
	if _, ok := r.Terms.Limits["token_budget"]; ok {
		t.Fatal("the renewal carried the pack's budget into the new term")
	}
	e.noOrderStuck(t)
}

// TestPaidOrderForALicenseNoLongerCurrentIsHeld (cases 2–4 after payment): a renewal
// paid for a license revoked after it was bought is held in the staff queue with
// the reason and answers 2xx on every delivery; staff fulfil it by hand for another
// license, or refund it through Stripe.
func TestPaidOrderForALicenseNoLongerCurrentIsHeld(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	o1, o2 := e.buy(t, "renew-enterprise", e.router.ID), e.buy(t, "credit-pack-5m", e.router.ID)
	if _, err := e.iss.ChangeStatus(ctx, e.router.ID, entitlements.ActionRevoke, "fraud", time.Time{}, checker); err != nil {
		t.Fatal(err)
	}
	for _, o := range []*entitlements.Order{o1, o2} {
		for range 2 {
			if out := e.mustDeliver(t, "checkout.session.completed", session(o, "paid")); out != entitlements.OrderHeld {
				t.Fatalf("%s: %q", o.Kind, out)
			}
		}
		got := e.order(t, o.ID)
		if got.Status != entitlements.OrderHeld || !strings.Contains(got.ReviewReason, "revoked") || !e.queued(t, o.ID) {
			t.Fatalf("%s: %s %q queued=%v", o.Kind, got.Status, got.ReviewReason, e.queued(t, o.ID))
		}
		if n := e.count(t, `SELECT count(*) FROM entitlements WHERE order_id = $1`, o.ID); n != 0 {
			t.Fatalf("a held order opened %d entitlements", n)
		}
	}
	res, err := e.shop.OrderPage(ctx, e.buyer, o1.ID)
	if err != nil || res.Order.Status != entitlements.OrderHeld {
		t.Fatalf("page: %+v %v", res, err)
	}
	e.noOrderStuck(t)

	// By hand: an issuer may not; an approver applies it to another current license.
	other := e.issue(t, "enterprise-annual")
	if _, err := e.shop.FulfilByHand(ctx, o1.ID, other.ID, "customer's other site", maker); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
		t.Fatalf("an issuer fulfilled by hand: %v", err)
	}
	if _, err := e.shop.FulfilByHand(ctx, o1.ID, "", "", checker); entitlements.ErrorCode(err) != entitlements.EINVALID {
		t.Fatalf("without a note: %v", err)
	}
	// Fulfilled for the revoked license again: refused, still held, with the reason.
	if _, err := e.shop.FulfilByHand(ctx, o1.ID, "", "try again", checker); entitlements.ErrorCode(err) != entitlements.ECONFLICT {
		t.Fatalf("by hand for the revoked license: %v", err)
	}
	if got := e.order(t, o1.ID); got.Status != entitlements.OrderHeld || !e.queued(t, o1.ID) {
		t.Fatalf("after a refused fulfilment by hand: %s", got.Status)
	}
	// A failure that is not a refusal (here the database refusing the entitlement's
	// row) after the order was released puts it back in the queue, held, with nothing
	// opened for it; it is not left paid and out of every queue.
	if _, err := e.store.Pool().Exec(ctx, `CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
		CREATE TRIGGER fail_insert BEFORE INSERT ON entitlements FOR EACH ROW EXECUTE FUNCTION fail_insert()`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.shop.FulfilByHand(ctx, o1.ID, other.ID, "customer's other site", checker); err == nil || entitlements.ErrorCode(err) == entitlements.ECONFLICT {
		t.Fatalf("fulfilment by hand with the database failing: %v", err)
	}
	if _, err := e.store.Pool().Exec(ctx, `DROP TRIGGER fail_insert ON entitlements`); err != nil {
		t.Fatal(err)
	}
	if got := e.order(t, o1.ID); got.Status != entitlements.OrderHeld || !e.queued(t, o1.ID) || !strings.Contains(got.ReviewReason, "try again") {
		t.Fatalf("after a failed fulfilment by hand: %s %q queued=%v", got.Status, got.ReviewReason, e.queued(t, o1.ID))
	}
	if n := e.count(t, `SELECT count(*) FROM entitlements WHERE order_id = $1`, o1.ID); n != 0 {
		t.Fatalf("a failed fulfilment left %d entitlements", n)
	}
	done, err := e.shop.FulfilByHand(ctx, o1.ID, other.ID, "customer's other site", checker)
	if err != nil {
		t.Fatal(err)
	}
	if done.License.Supersedes != other.ID || done.Order.Status != entitlements.OrderFulfilled || e.queued(t, o1.ID) {
		t.Fatalf("fulfilled by hand: supersedes %s, order %s, queued %v", done.License.Supersedes, done.Order.Status, e.queued(t, o1.ID))
	}
	if n := e.count(t, `SELECT count(*) FROM audit_events WHERE action = 'order.release' AND subject = $1 AND actor = $2`, o1.ID, checker.Email); n != 3 {
		t.Fatalf("%d releases audited", n)
	}
	// Refund: through Stripe (stripe-mock), once; the order leaves the queue.
	if _, err := e.shop.RefundHeld(ctx, o2.ID, "customer asked", maker); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
		t.Fatalf("an issuer refunded: %v", err)
	}
	got, err := e.shop.RefundHeld(ctx, o2.ID, "license revoked before fulfilment", checker)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != entitlements.OrderRefunded || e.queued(t, o2.ID) {
		t.Fatalf("after refund: %s queued=%v", got.Status, e.queued(t, o2.ID))
	}
	if _, err := e.shop.RefundHeld(ctx, o2.ID, "again", checker); entitlements.ErrorCode(err) != entitlements.ECONFLICT {
		t.Fatalf("a second refund: %v", err)
	}
	// Stripe then reports the refund: nothing more happens, the order stays reviewed.
	e.mustDeliver(t, "charge.refunded", refund(o2, o2.Amount))
	if got := e.order(t, o2.ID); got.Status != entitlements.OrderRefunded || e.queued(t, o2.ID) {
		t.Fatalf("after Stripe's refund event: %s queued=%v", got.Status, e.queued(t, o2.ID))
	}
	if n := e.count(t, `SELECT count(*) FROM audit_events WHERE action = 'order.refund' AND subject = $1`, o2.ID); n != 1 {
		t.Fatalf("%d refunds audited", n)
	}
}

// TestRefundBeforeCompletionIssuesNothing (case 5): a refund, a dispute or a partial
// refund that Stripe delivers before checkout.session.completed is answered 503
// (redelivered) and kept by its payment intent; the completion then issues nothing
// and queues the order; the redelivered event answers 2xx.
func TestRefundBeforeCompletionIssuesNothing(t *testing.T) {
	e := mustEnv(t)
	cases := []struct {
		name   string
		event  string
		obj    func(o *entitlements.Order) map[string]any
		status string
	}{
		{"refund", "charge.refunded", func(o *entitlements.Order) map[string]any { return refund(o, o.Amount) }, entitlements.OrderRefunded},
		{"dispute", "charge.dispute.created", dispute, entitlements.OrderDisputed},
		{"partial refund", "charge.refunded", func(o *entitlements.Order) map[string]any { return refund(o, o.Amount/2) }, entitlements.OrderHeld},
	}
	licenses := e.count(t, `SELECT count(*) FROM licenses`)
	for _, c := range cases {
		o := e.buy(t, "pilot", "")
		p, h, _ := e.signed(t, c.event, c.obj(o))
		_, err := e.shop.HandleWebhook(context.Background(), p, h)
		if entitlements.ErrorCode(err) != entitlements.EUNAVAILABLE {
			t.Fatalf("%s before completion answered %v, want 503 so Stripe redelivers", c.name, err)
		}
		if n := e.count(t, `SELECT count(*) FROM stripe_pending_events WHERE payment_intent = $1 AND matched_at IS NULL`, pi(o)); n != 1 {
			t.Fatalf("%s: %d pending events", c.name, n)
		}
		if out := e.mustDeliver(t, "checkout.session.completed", session(o, "paid")); out != c.status {
			t.Fatalf("%s: completion answered %q", c.name, out)
		}
		got := e.order(t, o.ID)
		if got.Status != c.status || got.FulfilledLicenseID != "" || !e.queued(t, o.ID) || !strings.Contains(got.ReviewReason, "nothing was issued") {
			t.Fatalf("%s: order %s %q queued=%v", c.name, got.Status, got.ReviewReason, e.queued(t, o.ID))
		}
		if n := e.count(t, `SELECT count(*) FROM entitlements WHERE order_id = $1`, o.ID); n != 0 {
			t.Fatalf("%s: an entitlement was opened", c.name)
		}
		// The success page changes nothing either.
		if res, err := e.shop.OrderPage(context.Background(), e.buyer, o.ID); err != nil || res.License != nil {
			t.Fatalf("%s: page %+v %v", c.name, res, err)
		}
		if out, err := e.shop.HandleWebhook(context.Background(), p, h); err != nil {
			t.Fatalf("%s redelivered: %q %v", c.name, out, err)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM licenses`); n != licenses {
		t.Fatalf("%d licenses issued for refunded or disputed money", n-licenses)
	}
	if n := e.count(t, `SELECT count(*) FROM stripe_pending_events WHERE matched_at IS NULL`); n != 0 {
		t.Fatalf("%d events still unmatched", n)
	}
	e.noOrderStuck(t)
}

// TestRefundRacesCompletion: the refund and the completion of one order delivered at
// once, many times: whatever the interleaving, no active license is left for
// refunded money, and the order ends refunded and queued.
func TestRefundRacesCompletion(t *testing.T) {
	e := mustEnv(t)
	for round := range 4 {
		o := e.buy(t, "pilot", "")
		pc, hc, _ := e.signed(t, "checkout.session.completed", session(o, "paid"))
		pr, hr, _ := e.signed(t, "charge.refunded", refund(o, o.Amount))
		// Stripe redelivers what failed: keep delivering both until each answers 2xx.
		for attempt := 0; ; attempt++ {
			errs := race(6, func(i int) error {
				p, h := pc, hc
				if i%2 == 1 {
					p, h = pr, hr
				}
				_, err := e.shop.HandleWebhook(context.Background(), p, h)
				return err
			})
			failed := false
			for _, err := range errs {
				if err != nil {
					if entitlements.ErrorCode(err) != entitlements.EUNAVAILABLE {
						t.Fatalf("round %d: %v", round, err)
					}
					failed = true
				}
			}
			if !failed {
				break
			}
			if attempt > 5 {
				t.Fatalf("round %d: still failing after %d redeliveries", round, attempt)
			}
		}
		got := e.order(t, o.ID)
		if got.Status != entitlements.OrderRefunded || !e.queued(t, o.ID) {
			t.Fatalf("round %d: order %s queued=%v", round, got.Status, e.queued(t, o.ID))
		}
		if got.FulfilledLicenseID != "" {
			if l := e.license(t, got.FulfilledLicenseID); l.Status != entitlements.LicenseSuspended {
				t.Fatalf("round %d: license for refunded money is %s", round, l.Status)
			}
		} else if n := e.count(t, `SELECT count(*) FROM licenses l JOIN entitlements en ON en.id = l.entitlement_id WHERE en.order_id = $1`, o.ID); n != 0 {
			t.Fatalf("round %d: a license was issued but not recorded on the order", round)
		}
	}
}

// TestUnmatchedEventsAreBounded: an event for an order this database does not have
// is answered 503 while Stripe retries (its deliveries counted), then 2xx once the
// retry window is over, and staff see it.
func TestUnmatchedEventsAreBounded(t *testing.T) {
	e := mustEnv(t)
	ghost := map[string]any{"id": "ch_ghost", "object": "charge", "payment_intent": "pi_ghost", "amount": 1000,
		"amount_refunded": 1000, "refunded": true, "currency": "usd"}
	p, h, id := e.signed(t, "charge.refunded", ghost)
	for i := range 3 {
		if _, err := e.shop.HandleWebhook(context.Background(), p, h); entitlements.ErrorCode(err) != entitlements.EUNAVAILABLE {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	unknown := session(&entitlements.Order{ID: "ord_01HZY3QK8Y0000000000000000", CheckoutSessionID: "cs_test_ghost", Amount: 250000, Currency: "usd"}, "paid")
	ps, hs, sid := e.signed(t, "checkout.session.completed", unknown)
	if _, err := e.shop.HandleWebhook(context.Background(), ps, hs); entitlements.ErrorCode(err) != entitlements.EUNAVAILABLE {
		t.Fatalf("session of an unknown order: %v", err)
	}
	list, err := e.shop.Unmatched(context.Background(), 10, &entitlements.Staff{Email: "v@m.test", Role: entitlements.RoleViewer})
	if err != nil || len(list) != 2 || list[0].EventID != id || list[0].Deliveries != 3 || list[0].GivenUp || list[1].EventID != sid {
		t.Fatalf("unmatched: %+v %v", list, err)
	}
	e.shop.Now = func() time.Time { return time.Now().Add(purchase.DefaultRetryWindow + time.Hour) }
	for _, d := range [][2]any{{p, h}, {ps, hs}} {
		out, err := e.shop.HandleWebhook(context.Background(), d[0].([]byte), d[1].(string))
		if err != nil || !strings.Contains(out, "kept for staff") {
			t.Fatalf("after the retry window: %q %v", out, err)
		}
	}
	list, _ = e.shop.Unmatched(context.Background(), 10, checker)
	if len(list) != 2 || !list[0].GivenUp || !list[1].GivenUp {
		t.Fatalf("after the window: %+v", list)
	}
	if n := e.count(t, `SELECT count(*) FROM orders`); n != 0 {
		t.Fatalf("unmatched events made %d orders", n)
	}
}

// TestSessionEndings: checkout.session.expired cancels a pending order and nothing
// else; async_payment_failed finds its order by metadata when the client reference
// is missing; a session naming another order's payment intent changes nothing.
func TestSessionEndings(t *testing.T) {
	e := mustEnv(t)
	o := e.buy(t, "pilot", "")
	if out := e.mustDeliver(t, "checkout.session.expired", session(o, "unpaid")); out != entitlements.OrderCancelled {
		t.Fatalf("expired: %q", out)
	}
	if got := e.order(t, o.ID); got.Status != entitlements.OrderCancelled {
		t.Fatalf("expired: %s", got.Status)
	}
	// An expiry of a paid order changes nothing.
	paid := e.buy(t, "pilot", "")
	e.mustDeliver(t, "checkout.session.completed", session(paid, "paid"))
	e.mustDeliver(t, "checkout.session.expired", session(paid, "paid"))
	if got := e.order(t, paid.ID); got.Status != entitlements.OrderFulfilled {
		t.Fatalf("an expiry moved a fulfilled order to %s", got.Status)
	}
	async := e.buy(t, "pilot", "")
	e.mustDeliver(t, "checkout.session.completed", session(async, "unpaid"))
	m := session(async, "unpaid")
	delete(m, "client_reference_id")
	if out := e.mustDeliver(t, "checkout.session.async_payment_failed", m); out != entitlements.OrderFailed {
		t.Fatalf("async failure by metadata: %q", out)
	}
	// Another order's payment intent.
	thief := e.buy(t, "pilot", "")
	s := session(thief, "paid")
	s["payment_intent"] = pi(paid)
	if out := e.mustDeliver(t, "checkout.session.completed", s); !strings.HasPrefix(out, "ignored") {
		t.Fatalf("another order's payment intent: %q", out)
	}
	if got := e.order(t, thief.ID); got.Status != entitlements.OrderPending || got.PaymentIntent != "" {
		t.Fatalf("order with a stolen payment intent: %s %q", got.Status, got.PaymentIntent)
	}
	if _, err := e.store.Pool().Exec(context.Background(), `UPDATE orders SET payment_intent = $1 WHERE id = $2`, pi(paid), thief.ID); err == nil {
		t.Fatal("the database took a payment intent twice")
	}
}

// TestRefundsAfterFulfilment: a full refund of a top-up suspends its license with
// the chain rule (the license it replaced, still in changeover, with it) and queues
// the order; a partial refund suspends nothing and queues it with the amounts.
func TestRefundsAfterFulfilment(t *testing.T) {
	e := mustEnv(t)
	pack := e.buy(t, "credit-pack-5m", e.router.ID)
	e.mustDeliver(t, "checkout.session.completed", session(pack, "paid"))
	partial := e.buy(t, "pilot", "")
	e.mustDeliver(t, "checkout.session.completed", session(partial, "paid"))

	e.mustDeliver(t, "charge.refunded", refund(partial, 100_00))
	got := e.order(t, partial.ID)
	if l := e.license(t, got.FulfilledLicenseID); l.Status != entitlements.LicenseActive {
		t.Fatalf("a partial refund suspended the license: %s", l.Status)
	}
	if got.Status != entitlements.OrderFulfilled || !e.queued(t, partial.ID) || !strings.Contains(got.ReviewReason, "100.00 usd of 2500.00 usd") {
		t.Fatalf("partial refund: %s %q", got.Status, got.ReviewReason)
	}

	e.mustDeliver(t, "charge.refunded", refund(pack, pack.Amount))
	got = e.order(t, pack.ID)
	succ, prev := e.license(t, got.FulfilledLicenseID), e.license(t, e.router.ID)
	if got.Status != entitlements.OrderRefunded || !e.queued(t, pack.ID) || succ.Status != entitlements.LicenseSuspended {
		t.Fatalf("full refund: order %s, license %s", got.Status, succ.Status)
	}
	if prev.Status != entitlements.LicenseSuspended || prev.BlockedWith != succ.ID {
		t.Fatalf("the replaced license in changeover is %s (blocked with %q), want suspended with its successor", prev.Status, prev.BlockedWith)
	}
	e.noOrderStuck(t)
}
