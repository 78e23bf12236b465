package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/metrum/licensing/internal/browsertest"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/portal"
)

// viewports are the two screens every page is looked at on: a laptop, and a phone
// (customers open the portal from mail).
var viewports = []struct {
	name string
	w, h int64
}{{"1280", 1280, 900}, {"390", 390, 844}}

// pageCheck is one page of the console or the portal: where, and what shows it is
// loaded.
type pageCheck struct{ name, path, ready string }

// TestEveryPageAccessible (issue 24): every console and portal page, at 1280×900 and
// at 390×844, has no serious or critical axe-core violation, no horizontal scrolling
// (a 200-character unbroken customer name included), and every control reachable by
// Tab alone. With SCREENSHOT_DIR set, each is saved as a PNG for a person to look at.
func TestEveryPageAccessible(t *testing.T) {
	e := mustShop(t, false)
	ctx := context.Background()
	a := e.tenant(t, "Wide", "ops@wide.test")
	a.customer.Name = strings.Repeat("W", 200) // one unbroken 200-character name
	if err := e.svc.UpdateCustomer(ctx, a.customer, e.maker); err != nil {
		t.Fatal(err)
	}
	dir, _ := releaseDir(t)
	e.portal.Releases = &portal.Releases{Dir: dir}
	draft, err := e.svc.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: a.customer.ID, Template: "enterprise-annual",
		ContractRef: "PO-2026-0042"}, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	buyer := &entitlements.Principal{Kind: entitlements.PrincipalPortalUser, CustomerID: a.customer.ID, Actor: a.email}
	_, held, err := e.shop.Buy(ctx, buyer, "credit-pack-5m", a.router.ID)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := e.issue(t, a.customer.ID, "enterprise-annual")
	if _, err := e.svc.ChangeStatus(ctx, a.router.ID, entitlements.ActionSuspend, "invoice overdue", time.Time{}, e.check); err != nil {
		t.Fatal(err)
	}
	p, h := event(t, "evt_a11y", "checkout.session.completed", sessionOf(held, "paid"), webhookSecret, time.Time{})
	if r := e.deliver(t, p, h); r.status != 200 {
		t.Fatalf("held order: %d", r.status)
	}
	leaseID := e.lease(t, a, "a11y-host")
	keys, _ := e.svc.ListKeys(ctx, e.admin)
	if err := e.store.CreateStaff(ctx, &entitlements.Staff{Email: "admin@staff.test", Role: entitlements.RoleAdmin}, "a long enough password", "test"); err != nil {
		t.Fatal(err)
	}

	console := []pageCheck{
		{"console-dashboard", "/staff/", "#chart-expiries"},
		{"console-licenses", "/staff/licenses", "main h1"},
		{"console-license", "/staff/licenses/" + other.ID, "main h1"},
		{"console-license-suspended", "/staff/licenses/" + a.router.ID, "main h1"},
		{"console-revoke-confirm", "/staff/licenses/" + other.ID + "/actions/revoke", "#confirm"},
		{"console-entitlements", "/staff/entitlements", "main h1"},
		{"console-entitlement-new", "/staff/entitlements/new", "main h1"},
		{"console-entitlement", "/staff/entitlements/" + draft.ID, "main h1"},
		{"console-customers", "/staff/customers", "main h1"},
		{"console-customer", "/staff/customers/" + a.customer.ID, "main h1"},
		{"console-orders", "/staff/orders", "#orders"},
		{"console-order", "/staff/orders/" + held.ID, "#order-facts"},
		{"console-bundles", "/staff/bundles", "main h1"},
		{"console-keys", "/staff/keys", "#keys"},
		{"console-key-not-after", "/staff/keys/" + keys[0].KID + "/not-after", "#at"},
		{"console-key-retire-confirm", "/staff/keys/" + keys[0].KID + "/retire", "main h1"},
		{"console-key-rotate-confirm", "/staff/keys/rotate?product=genai-smart-router&purpose=license", "main h1"},
		{"console-renew-form", "/staff/licenses/" + other.ID + "/successor?kind=renewal", "main h1"},
		{"console-top-up-form", "/staff/licenses/" + other.ID + "/successor?kind=top-up", "main h1"},
		{"console-usage-list", "/staff/usage", "main h1"},
		{"console-license-usage", "/staff/licenses/" + other.ID + "/usage", "main h1"},
		{"console-secret-gone", "/staff/secret", "main h1"},
		{"console-audit", "/staff/audit", "main h1"},
		{"console-accounts", "/staff/accounts", "main h1"},
		{"console-tokens", "/staff/tokens", "main h1"},
		{"console-not-found", "/staff/licenses/lic_01HZY3QK8Y0000000000000001", "main h1"},
	}
	portalPages := []pageCheck{
		{"portal-licenses", "/portal/", "main h1"},
		{"portal-license", "/portal/licenses/" + other.ID, "main h1"},
		{"portal-license-suspended", "/portal/licenses/" + a.router.ID, "main h1"},
		{"portal-license-pilot", "/portal/licenses/" + a.pilot.ID, "main h1"},
		{"portal-rotate-confirm", "/portal/licenses/" + a.pilot.ID + "/lease-token", "#confirm"},
		{"portal-release-confirm", "/portal/licenses/" + a.pilot.ID + "/leases/" + leaseID + "/release", "main h1"},
		{"portal-license-usage", "/portal/licenses/" + other.ID + "/usage", "main h1"},
		{"portal-secret-gone", "/portal/secret", "main h1"},
		{"portal-downloads", "/portal/downloads", "#downloads"},
		{"portal-tokens", "/portal/tokens", "main h1"},
		{"portal-buy", "/portal/buy?license=" + other.ID, "main h1"},
		{"portal-order-held", "/portal/orders/" + held.ID, "#order-held"},
	}
	var failures []string
	check := func(b *staffBrowser, pages []pageCheck) {
		for _, vp := range viewports {
			b.do("viewport "+vp.name, chromedp.EmulateViewport(vp.w, vp.h))
			for _, pg := range pages {
				b.do(pg.name, chromedp.Navigate(e.ts.URL+pg.path), chromedp.WaitVisible(chromedp.CSS(pg.ready)))
				name := pg.name + "-" + vp.name
				browsertest.Screenshot(t, b.ctx, name)
				for _, v := range browsertest.Axe(t, b.ctx) {
					failures = append(failures, name+": "+v.String())
				}
				if wide, _ := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)); wide {
					w, _ := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
					failures = append(failures, fmt.Sprintf("%s: %d px wide on a %d px screen", name, w, vp.w))
				}
				if vp.w < 700 {
					// On a phone every table reads as cards: none scrolls sideways in its box.
					wideTables, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("main table")].filter(t =>
						!t.closest("figure") && !t.classList.contains("numbers") && t.scrollWidth > t.clientWidth + 1).map(t => t.id || t.className || "a table")`))
					if err != nil {
						t.Fatalf("%s: measuring the tables: %v", name, err)
					}
					if len(wideTables) > 0 {
						failures = append(failures, fmt.Sprintf("%s: tables wider than the phone: %v", name, wideTables))
					}
				}
				if vp.w == 1280 {
					if missed := browsertest.Unreachable(t, b.ctx); len(missed) > 0 {
						failures = append(failures, name+": not reachable by Tab: "+strings.Join(missed, ", "))
					}
				}
			}
		}
	}
	signedOut := e.browser(t)
	check(signedOut, []pageCheck{{"console-login", "/staff/login", "#sign-in"}, {"portal-sign-in", "/portal/sign-in", "#send-link"},
		{"portal-evaluate", "/portal/evaluate", "main h1"}})
	check(e.staffBrowser(t, "admin@staff.test"), console)
	check(e.portalBrowser(t, a.email), portalPages)
	for _, f := range failures {
		t.Error(f)
	}
}
