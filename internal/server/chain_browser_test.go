package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/metrum/licensing/internal/entitlements"
)

// TestBrowserChainRevocation: an approver revokes a top-up in the console; the
// confirmation lists the top-up and the renewal it replaced (still in its
// changeover), and "only this license" says when the renewal would stop; after the
// revocation both are revoked, and the customer's portal shows no license to install
// for the product, and says why.
func TestBrowserChainRevocation(t *testing.T) {
	e := mustPortal(t, 0, 0)
	ctx := context.Background()
	a := e.tenant(t, "Umbrella Corp", "ops@umbrella.test")
	changeover := 72 * time.Hour // the issuer's default
	successor := func(kind, of, tmpl string) *entitlements.License {
		ent, err := e.svc.CreateSuccessor(ctx, entitlements.SuccessorInput{Kind: kind, LicenseID: of, Template: tmpl, Changeover: &changeover}, e.maker)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Approve(ctx, ent.ID, e.check); err != nil {
			t.Fatal(err)
		}
		l, err := e.svc.Issue(ctx, ent.ID, e.maker)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	renewal := successor(entitlements.KindRenewal, a.router.ID, "")
	topUp := successor(entitlements.KindTopUp, renewal.ID, "credit-pack-5m")
	if err := e.store.CreateStaff(ctx, &entitlements.Staff{Email: "approver@staff.test", Role: entitlements.RoleApprover},
		"a long enough password", "test"); err != nil {
		t.Fatal(err)
	}
	staff := e.staffBrowser(t, "approver@staff.test")
	staff.do("revoke the top-up", chromedp.Navigate(e.ts.URL+"/staff/licenses/"+topUp.ID), chromedp.Click(chromedp.ID("revoke")),
		chromedp.WaitVisible(chromedp.ID("chain-list")))
	staff.shot("console-revoke-chain-confirm")
	staff.shot("console-revoke-chain-confirm")
	list := staff.text("#chain-list")
	for _, want := range []string{topUp.ID, renewal.ID, "credit-pack-5m", "changeover until"} {
		if !strings.Contains(list, want) {
			t.Fatalf("the confirmation's list lacks %q:\n%s", want, list)
		}
	}
	if only := staff.text("#only-list"); !strings.Contains(only, renewal.ID+" stops at") {
		t.Fatalf("the only-this-license choice does not say when the renewal stops: %q", only)
	}
	// The original license's changeover is still running too: the chain reaches it.
	if !strings.Contains(list, a.router.ID) {
		t.Fatalf("the confirmation's list lacks the original license %s:\n%s", a.router.ID, list)
	}
	staff.do("confirm", chromedp.SendKeys(chromedp.ID("reason"), "chargeback"), chromedp.Click(chromedp.ID("confirm")),
		chromedp.WaitVisible(chromedp.ID("flash")))
	staff.shot("console-revoked-with-chain")
	if f := staff.text("#flash"); !strings.Contains(f, topUp.ID+" is revoked") || !strings.Contains(f, renewal.ID+" is revoked with it") {
		t.Fatalf("flash: %q", f)
	}
	for _, id := range []string{topUp.ID, renewal.ID, a.router.ID} {
		if l, _ := e.store.GetLicense(ctx, id); l.Status != entitlements.LicenseRevoked {
			t.Fatalf("%s is %s after the chain revocation", id, l.Status)
		}
	}

	// The customer's portal: nothing to install for the router, and why.
	br := e.portalBrowser(t, a.email)
	br.do("licenses", chromedp.Navigate(e.ts.URL+"/portal/"), chromedp.WaitVisible(chromedp.ID("install")))
	br.shot("portal-nothing-to-install")
	advice := br.text(`#install [data-head="` + topUp.ID + `"]`)
	for _, want := range []string{"no license to install", topUp.ID, "revoked", "chargeback", "Contact Metrum support"} {
		if !strings.Contains(advice, want) {
			t.Fatalf("the portal's advice lacks %q: %q", want, advice)
		}
	}
	// The customer's other lines are untouched: the pilot and the CoreSDK token are
	// the ones to install; nothing tells them to install the revoked licenses.
	all := br.text("#install")
	for _, want := range []string{"install " + a.pilot.ID, "install " + a.jws.ID} {
		if !strings.Contains(all, want) {
			t.Fatalf("the advice lacks %q:\n%s", want, all)
		}
	}
	for _, never := range []string{"install " + topUp.ID, "install " + renewal.ID, "install " + a.router.ID} {
		if strings.Contains(all, never) {
			t.Fatalf("the portal says to %s:\n%s", never, all)
		}
	}
	br.do("the renewal's page", chromedp.Navigate(e.ts.URL+"/portal/licenses/"+renewal.ID), chromedp.WaitVisible(chromedp.ID("not-installable")))
	br.shot("portal-renewal-revoked")
	if s := br.text("#not-installable"); !strings.Contains(s, "don't install it") || strings.Contains(s, "Install "+topUp.ID) {
		t.Fatalf("the revoked renewal's page: %q", s)
	}
	// Its file stays downloadable for the record, but nothing on the page says to
	// install it.
	if s := br.text("main"); strings.Contains(s, "Install the signed") || !strings.Contains(br.text("#download-record"), "for your records only") {
		t.Fatalf("the revoked renewal's download section still says to install it:\n%s", s)
	}
}

// portalBrowser signs a portal user in, in its own Chromium, by the emailed link.
func (e *portalEnv) portalBrowser(t *testing.T, email string) *staffBrowser {
	t.Helper()
	b := e.browser(t)
	before := e.smtp.Count(email)
	b.do("ask for a sign-in link", chromedp.Navigate(e.ts.URL+"/portal/sign-in"), chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.Click(chromedp.ID("send-link")), chromedp.WaitVisible(chromedp.ID("link-sent")))
	if before != 0 {
		t.Fatalf("portalBrowser: %s already has %d mails", email, before)
	}
	msg := e.smtp.Wait(t, email, 5*time.Second)
	b.do("open the link", chromedp.Navigate(msg.Link()), chromedp.WaitVisible(chromedp.ID("confirm-sign-in")),
		chromedp.Click(chromedp.ID("confirm-sign-in")), chromedp.WaitVisible(chromedp.ID("whoami")))
	return b
}
