package server_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/metrum/licensing/internal/browsertest"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/smtptest"
	"github.com/metrum/licensing/web/ui"
)

// TestBrowserEvaluation: a new visitor asks for an evaluation with their email → the
// link arrives at the SMTP listener → they start it → the evaluation license is
// issued and downloaded → the verifier says valid (with a lease from its token); a
// second address of the same domain is refused.
func TestBrowserEvaluation(t *testing.T) {
	e := mustShop(t, false)
	br := e.browser(t)
	ctx, step, text := br.ctx, br.do, br.text
	request := func(email string) smtptest.Message {
		t.Helper()
		step("evaluation form", chromedp.Navigate(e.ts.URL+"/portal/sign-in"), chromedp.Click(chromedp.ID("evaluate")),
			chromedp.WaitVisible(chromedp.ID("request-evaluation")))
		browsertest.Screenshot(t, ctx, "portal-evaluate")
		step("ask", chromedp.SendKeys(chromedp.ID("email"), email), chromedp.SendKeys(chromedp.ID("company"), "Initrode"),
			chromedp.Click(chromedp.ID("request-evaluation")), chromedp.WaitVisible(chromedp.ID("link-sent")))
		return e.smtp.Wait(t, email, 5*time.Second)
	}
	msg := request("dev@initrode.test")
	link := linkIn(msg.Data, "/portal/evaluate/link?token=")
	step("open the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("start-evaluation")))
	browsertest.Screenshot(t, ctx, "portal-evaluate-confirm")
	step("start", chromedp.Click(chromedp.ID("start-evaluation")), chromedp.WaitVisible(chromedp.ID("order-done")))
	browsertest.Screenshot(t, ctx, "portal-evaluation-issued")
	token := text("#lease-token")
	licID := strings.TrimSpace(strings.TrimPrefix(text("#order-done"), "Your license is issued: "))
	status, body := browsertest.Fetch(t, ctx, "/portal/licenses/"+licID+"/download/file")
	if status != 200 {
		t.Fatalf("download: %d", status)
	}
	if r := e.verifyBytes(t, []byte(body), "genai-smart-router"); r.Reason != "license-lease-required" || r.SKU != "eval-72h" {
		t.Fatalf("evaluation license: %s %s %s", r.Status, r.Reason, r.SKU)
	}
	// With a lease taken with the token the page showed once, the verifier says valid.
	lic, err := e.store.GetLicense(context.Background(), licID)
	if err != nil {
		t.Fatal(err)
	}
	x := &tenant{pilot: lic, leaseTok: token}
	leaseID := e.lease(t, x, "eval-host")
	if leaseID == "" {
		t.Fatal("no lease")
	}
	// A colleague at the same domain: refused (one evaluation per domain in 90 days).
	step("sign out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("send-link")))
	msg = request("ops@initrode.test")
	step("second link", chromedp.Navigate(linkIn(msg.Data, "/portal/evaluate/link?token=")), chromedp.Click(chromedp.ID("start-evaluation")),
		chromedp.WaitVisible(chromedp.CSS("p.error")))
	browsertest.Screenshot(t, ctx, "portal-evaluation-refused")
	if s := text("p.error"); !strings.Contains(s, "already started for initrode.test") {
		t.Fatalf("second evaluation: %q", s)
	}
	if n := e.count(t, `SELECT count(*) FROM customers WHERE email = 'ops@initrode.test'`); n != 0 {
		t.Fatal("the refused evaluation left a customer")
	}
}

func linkIn(mail, path string) string {
	i := strings.Index(mail, "http")
	for i >= 0 {
		end := strings.IndexAny(mail[i:], " \r\n")
		if end < 0 {
			end = len(mail) - i
		}
		if u := mail[i : i+end]; strings.Contains(u, path) {
			return u
		}
		j := strings.Index(mail[i+1:], "http")
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return ""
}

// TestBrowserPaidPurchase: a signed-in customer buys a pilot: the portal creates the
// order and the Checkout Session (stripe-mock) server-side and sends the browser to
// Checkout; the price shown and charged is the catalogue's.
func TestBrowserPaidPurchase(t *testing.T) {
	e := mustShop(t, false)
	a := e.tenant(t, "Acme", "ops@acme.test")
	ctx := e.browser(t).ctx
	var mu sync.Mutex
	var checkout string
	if err := chromedp.Listen(ctx, func(ev any) {
		if r, ok := ev.(*network.EventRequestWillBeSent); ok && strings.HasPrefix(r.Request.URL, "https://checkout.stripe.com/") {
			mu.Lock()
			checkout = r.Request.URL
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.portal.Invite(context.Background(), a.customer.ID, "buyer@acme.test", "", e.maker); err != nil {
		t.Fatal(err)
	}
	link := e.smtp.Wait(t, "buyer@acme.test", 5*time.Second).Link()
	err := chromedp.Do(ctx, chromedp.Navigate(link), chromedp.Click(chromedp.ID("confirm-sign-in")), chromedp.WaitVisible(chromedp.ID("licenses")),
		chromedp.Click(chromedp.ID("nav-buy")), chromedp.WaitVisible(chromedp.ID("items")))
	if err != nil {
		t.Fatal(err)
	}
	browsertest.Screenshot(t, ctx, "portal-buy")
	items, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("items")))
	if !strings.Contains(items, "30-day pilot") || !strings.Contains(items, "USD 2,500.00") {
		t.Fatalf("buy page: %s", items)
	}
	// The click leaves for Checkout, which this machine can't reach: the request is enough.
	_ = chromedp.Do(ctx, chromedp.Click(chromedp.ID("buy-pilot")))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		got := checkout
		mu.Unlock()
		if got != "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if checkout == "" {
		t.Fatal("the browser was not sent to Stripe Checkout")
	}
	var amount int64
	var session string
	e.store.Pool().QueryRow(context.Background(), `SELECT amount, checkout_session_id FROM orders WHERE customer_id = $1 AND item = 'pilot'`, a.customer.ID).Scan(&amount, &session)
	if amount != 250000 || session == "" {
		t.Fatalf("order: amount %d session %q", amount, session)
	}
}

// TestBrowserHeldOrders: a renewal and a credit pack paid for a license revoked after
// they were bought are held; the customer's order page says what happens next; an
// approver finds them in the console's order queue, sees a refused fulfilment
// re-rendered with its reason and what was typed, fulfils one by hand for another
// license, and refunds the other after ticking the confirmation.
func TestBrowserHeldOrders(t *testing.T) {
	e := mustShop(t, false)
	ctx := context.Background()
	a := e.tenant(t, "Hooli", "ops@hooli.test")
	buyer := &entitlements.Principal{Kind: entitlements.PrincipalPortalUser, CustomerID: a.customer.ID, Actor: a.email}
	buy := func(item string) *entitlements.Order {
		_, o, err := e.shop.Buy(ctx, buyer, item, a.router.ID)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	renewal, pack := buy("renew-enterprise"), buy("credit-pack-5m")
	if _, err := e.svc.ChangeStatus(ctx, a.router.ID, entitlements.ActionRevoke, "contract terminated", time.Time{}, e.check); err != nil {
		t.Fatal(err)
	}
	for i, o := range []*entitlements.Order{renewal, pack} {
		p, h := event(t, "evt_held_"+ui.Itoa(i), "checkout.session.completed", sessionOf(o, "paid"), webhookSecret, time.Time{})
		if r := e.deliver(t, p, h); r.status != 200 {
			t.Fatalf("delivery of a paid order for a revoked license: %d %s", r.status, r.body)
		}
	}
	other, _ := e.issue(t, a.customer.ID, "enterprise-annual")

	customer := e.portalBrowser(t, a.email)
	customer.do("the held order's page", chromedp.Navigate(e.ts.URL+"/portal/orders/"+renewal.ID), chromedp.WaitVisible(chromedp.ID("order-held")))
	customer.shot("portal-order-held")
	if s := customer.text("#order-held"); !strings.Contains(s, "revoked") || !strings.Contains(s, "refund") {
		t.Fatalf("held order page: %q", s)
	}
	if n := customer.count(`a#order-license[href="/portal/licenses/` + a.router.ID + `"]`); n != 1 {
		t.Fatalf("the held order's page links the license it was bought for %d times", n)
	}

	if err := e.store.CreateStaff(ctx, &entitlements.Staff{Email: "approver@staff.test", Role: entitlements.RoleApprover},
		"a long enough password", "test"); err != nil {
		t.Fatal(err)
	}
	staff := e.staffBrowser(t, "approver@staff.test")
	staff.do("the order queue", chromedp.Navigate(e.ts.URL+"/staff/orders"), chromedp.WaitVisible(chromedp.ID("orders")))
	staff.shot("console-order-queue")
	if q := staff.text("#orders"); !strings.Contains(q, renewal.ID) || !strings.Contains(q, pack.ID) || !strings.Contains(q, "held") {
		t.Fatalf("queue: %q", q)
	}
	staff.do("open the renewal", chromedp.Click(chromedp.CSS(`a[href="/staff/orders/`+renewal.ID+`"]`)), chromedp.WaitVisible(chromedp.ID("fulfil")))
	staff.do("fulfil for the revoked license", chromedp.SendKeys(chromedp.ID("fulfil-note"), "try as bought"), chromedp.Click(chromedp.ID("fulfil")),
		chromedp.WaitVisible(chromedp.ID("form-error")))
	staff.shot("console-order-fulfil-refused")
	if s := staff.text("#form-error"); !strings.Contains(s, "revoked") {
		t.Fatalf("refusal: %q", s)
	}
	if note, _ := chromedp.Run(staff.ctx, chromedp.Value(chromedp.ID("fulfil-note"))); note != "try as bought" {
		t.Fatalf("the note typed was lost: %q", note)
	}
	staff.do("fulfil for the other license", chromedp.SendKeys(chromedp.ID("license"), other.ID), chromedp.Click(chromedp.ID("fulfil")),
		chromedp.WaitVisible(chromedp.ID("issued-license")))
	staff.shot("console-order-fulfilled")
	if f := staff.text("#flash"); !strings.Contains(f, "fulfilled") {
		t.Fatalf("flash: %q", f)
	}
	if s := staff.text("#order-facts"); !strings.Contains(s, "Had been queued because") {
		t.Fatalf("a fulfilled order still reads as queued:\n%s", s)
	}
	if got := e.order(t, renewal.ID); got.Status != entitlements.OrderFulfilled {
		t.Fatalf("renewal order %s", got.Status)
	}

	staff.do("open the pack", chromedp.Navigate(e.ts.URL+"/staff/orders/"+pack.ID), chromedp.WaitVisible(chromedp.ID("refund")))
	staff.shot("console-order-held")
	staff.do("refund", chromedp.SendKeys(chromedp.ID("refund-note"), "license revoked before fulfilment"), chromedp.Click(chromedp.ID("refund-confirm")),
		chromedp.Click(chromedp.ID("refund")), chromedp.WaitVisible(chromedp.ID("flash")))
	if f := staff.text("#flash"); !strings.Contains(f, "refunded") {
		t.Fatalf("flash: %q", f)
	}
	if got := e.order(t, pack.ID); got.Status != entitlements.OrderRefunded || got.ReviewedBy != "approver@staff.test" {
		t.Fatalf("pack order %s reviewed by %q", got.Status, got.ReviewedBy)
	}
	staff.do("the queue is empty", chromedp.Navigate(e.ts.URL+"/staff/orders"), chromedp.WaitVisible(chromedp.ID("empty")))
}
