package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/metrum/licensing/internal/browsertest"
)

// TestBrowserPortal is what a customer does: staff invite them → the one-time link
// arrives at a real SMTP listener → they sign in in Chromium → see their licenses →
// download the license, which the verifier says is valid → release a lease slot →
// make an API token (shown once); the link can't be used twice. Each page is
// screenshotted (SCREENSHOT_DIR keeps them).
func TestBrowserPortal(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme Corp", "ops@acme.test")
	lease := e.lease(t, a, "acme-node-1")
	if _, err := e.svc.PublishBundle(context.Background(), "genai-smart-router", e.check); err != nil {
		t.Fatal(err)
	}
	// Staff invite a second person; their link arrives by SMTP.
	if _, err := e.portal.Invite(context.Background(), a.customer.ID, "cto@acme.test", "Acme CTO", e.maker); err != nil {
		t.Fatal(err)
	}
	msg := e.smtp.Wait(t, "cto@acme.test", 5*time.Second)
	link := msg.Link()
	if link == "" || !strings.Contains(msg.Data, "invited") {
		t.Fatalf("invitation mail: %s", msg.Data)
	}
	br := e.browser(t)
	ctx, step, text := br.ctx, br.do, br.text

	step("sign-in page", chromedp.Navigate(e.ts.URL+"/portal/sign-in"), chromedp.WaitVisible(chromedp.ID("send-link")))
	browsertest.Screenshot(t, ctx, "portal-sign-in")
	step("ask for a link", chromedp.SendKeys(chromedp.ID("email"), "nobody@else.test"), chromedp.Click(chromedp.ID("send-link")),
		chromedp.WaitVisible(chromedp.ID("link-sent")))
	browsertest.Screenshot(t, ctx, "portal-link-sent")

	step("open the mailed link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("confirm-sign-in")))
	browsertest.Screenshot(t, ctx, "portal-confirm-link")
	step("sign in", chromedp.Click(chromedp.ID("confirm-sign-in")), chromedp.WaitVisible(chromedp.ID("licenses")))
	browsertest.Screenshot(t, ctx, "portal-licenses")
	if who := text("#whoami"); !strings.Contains(who, "cto@acme.test") || !strings.Contains(who, "Acme Corp") {
		t.Fatalf("whoami: %q", who)
	}
	table := text("#licenses")
	for _, want := range []string{a.router.ID, a.pilot.ID, a.jws.ID, "enterprise-annual", "pilot-30d", "active", "Instance limit: 2 instances",
		"Token budget: 25,000,000 tokens", "Usage window: 30 days"} {
		if !strings.Contains(table, want) {
			t.Fatalf("license list lacks %q:\n%s", want, table)
		}
	}

	step("license page", chromedp.Click(chromedp.CSS(`a[href="/portal/licenses/`+a.router.ID+`"]`)), chromedp.WaitVisible(chromedp.ID("license-id")))
	browsertest.Screenshot(t, ctx, "portal-license")
	// Limits and features read for people, with their wire names for support.
	for sel, want := range map[string]string{"#limits": "Instance limit: 10 instances max_instances", "#features": "Usage export usage_export",
		"#grace": "24 hours", "#instance": "any instance", "#lease": "not required: works offline"} {
		if got := text(sel); !strings.Contains(got, want) {
			t.Fatalf("%s on the portal's license page: %q, want %q", sel, got, want)
		}
	}
	if s := text("#contact-sales"); !strings.Contains(s, a.router.ID) {
		t.Fatalf("no contact-sales line quoting the license: %q", s)
	}
	status, body := browsertest.Fetch(t, ctx, "/portal/licenses/"+a.router.ID+"/download/file")
	if status != 200 || body != string(a.router.File) {
		t.Fatalf("download: %d, equal to the stored bytes: %v", status, body == string(a.router.File))
	}
	if r := e.verifyBytes(t, []byte(body), "genai-smart-router"); r.Status != "valid" {
		t.Fatalf("the verifier says %s %s", r.Status, r.Reason)
	}
	if status, body := browsertest.Fetch(t, ctx, "/portal/licenses/"+a.router.ID+"/download/bundle"); status != 200 || !strings.Contains(body, "metrum.revocation.v1") {
		t.Fatalf("bundle download: %d", status)
	}

	step("lease page", chromedp.Navigate(e.ts.URL+"/portal/licenses/"+a.pilot.ID), chromedp.WaitVisible(chromedp.ID("leases")))
	browsertest.Screenshot(t, ctx, "portal-license-leases")
	if s := text("#leases"); !strings.Contains(s, "acme-node-1") || !strings.Contains(s, "Up to 2 slots released while their leases are still valid are freed for another host at once") {
		t.Fatalf("lease section: %s", s)
	}
	step("release confirmation", chromedp.Click(chromedp.CSS(`tr[data-lease-id="`+lease+`"] a`)), chromedp.WaitVisible(chromedp.ID("confirm")))
	browsertest.Screenshot(t, ctx, "portal-release-confirm")
	step("release", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("flash")))
	if f := text("#flash"); !strings.Contains(f, lease+" released; its slot is free now") {
		t.Fatalf("flash after release: %q", f)
	}
	browsertest.Screenshot(t, ctx, "portal-after-release")

	step("tokens", chromedp.Navigate(e.ts.URL+"/portal/tokens"), chromedp.WaitVisible(chromedp.ID("create-token")))
	step("create a token", chromedp.SendKeys(chromedp.ID("name"), "nightly sync"), chromedp.SendKeys(chromedp.ID("days"), "30"),
		chromedp.Click(chromedp.ID("create-token")), chromedp.WaitVisible(chromedp.ID("secret")))
	browsertest.Screenshot(t, ctx, "portal-token-created")
	tok := text("#secret")
	if r := e.api(t, tok, "/v1/licenses/"+a.router.ID); r.status != 200 {
		t.Fatalf("the token the page showed does not work: %d", r.status)
	}
	step("token list", chromedp.Navigate(e.ts.URL+"/portal/tokens"), chromedp.WaitVisible(chromedp.ID("tokens")))
	browsertest.Screenshot(t, ctx, "portal-tokens")
	if s := text("#tokens"); !strings.Contains(s, "nightly sync") || strings.Contains(s, tok) {
		t.Fatalf("token list: %s", s)
	}

	// The link was spent: a second use is refused.
	step("reuse the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("p.error")))
	browsertest.Screenshot(t, ctx, "portal-link-reused")
	if s := text("p.error"); !strings.Contains(s, "expired or was already used") {
		t.Fatalf("reused link: %q", s)
	}
	step("sign out", chromedp.Navigate(e.ts.URL+"/portal/"), chromedp.WaitVisible(chromedp.ID("sign-out")), chromedp.Click(chromedp.ID("sign-out")),
		chromedp.WaitVisible(chromedp.ID("send-link")))
	// Nothing was mailed to the unknown address, and the page said the same.
	if n := e.smtp.Count("nobody@else.test"); n != 0 {
		t.Fatalf("%d mails to an unknown address", n)
	}
	// Every download was recorded against the portal user.
	var n int
	e.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM downloads WHERE actor_kind = 'portal_user' AND actor = 'cto@acme.test'`).Scan(&n)
	if n != 2 {
		t.Fatalf("%d downloads recorded, want 2", n)
	}
}
