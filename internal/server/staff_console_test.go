package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/metrum/licensing/internal/browsertest"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/staffapi"
)

// TestBrowserStaffCustomersAndTokens: a staff member signs in, adds a customer (a bad
// email first: the form comes back with the message and the input kept), invites a
// portal user (the link arrives by SMTP), makes a customer API token and a personal
// access token (each shown once, each working), and reads a license page whose
// deliveries list the customer's portal download.
func TestBrowserStaffCustomersAndTokens(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme Corp", "ops@acme.test")
	ctx0 := context.Background()
	st := &entitlements.Staff{Email: "issuer@staff.test", Role: entitlements.RoleIssuer}
	if err := e.store.CreateStaff(ctx0, st, "a long enough password", "test"); err != nil {
		t.Fatal(err)
	}
	// The customer downloads their license in the portal first.
	pc := e.signIn(t, a.email)
	resp, _ := pc.Get(e.ts.URL + "/portal/licenses/" + a.router.ID + "/download/file")
	resp.Body.Close()

	br := e.browser(t)
	ctx, step, text := br.ctx, br.do, br.text
	step("sign in", chromedp.Navigate(e.ts.URL+"/staff/customers"), chromedp.SendKeys(chromedp.ID("email"), st.Email),
		chromedp.SendKeys(chromedp.ID("password"), "a long enough password"), chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("customers")))
	browsertest.Screenshot(t, ctx, "staff-customers")
	// The browser's own check would stop the form first: switch it off, as a script or
	// an old browser would, to see the server's answer.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelectorAll("form").forEach(f => f.noValidate = true); true`)); err != nil {
		t.Fatal(err)
	}
	step("bad email", chromedp.SendKeys(chromedp.ID("name"), "Globex Corporation"), chromedp.SendKeys(chromedp.ID("email"), "not an email"),
		chromedp.Click(chromedp.ID("create-customer")), chromedp.WaitVisible(chromedp.ID("email-error")))
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.ID("name"))); v != "Globex Corporation" {
		t.Fatalf("the form lost the input: %q", v)
	}
	browsertest.Screenshot(t, ctx, "staff-customer-form-error")
	step("add", chromedp.SetValue(chromedp.ID("email"), "it@globex.test"), chromedp.Click(chromedp.ID("create-customer")),
		chromedp.WaitVisible(chromedp.ID("customer-name")))
	if f := text("#flash"); !strings.Contains(f, "Customer Globex Corporation added") {
		t.Fatalf("flash: %q", f)
	}
	step("invite", chromedp.SendKeys(chromedp.ID("invite-email"), "it@globex.test"), chromedp.Click(chromedp.ID("invite")),
		chromedp.WaitVisible(chromedp.CSS("#portal-users table")))
	if !strings.Contains(text("#flash"), "Invited it@globex.test") {
		t.Fatalf("invite flash: %q", text("#flash"))
	}
	if m := e.smtp.Wait(t, "it@globex.test", 5*time.Second); m.Link() == "" {
		t.Fatal("no sign-in link in the invitation")
	}
	step("customer token", chromedp.SendKeys(chromedp.ID("token-name"), "their ci"), chromedp.Click(chromedp.ID("create-customer-token")),
		chromedp.WaitVisible(chromedp.ID("secret")))
	browsertest.Screenshot(t, ctx, "staff-customer-token")
	ctok := text("#secret")
	if r := e.api(t, ctok, "/v1/licenses"); r.status != 200 {
		t.Fatalf("the customer token shown does not work: %d", r.status)
	}
	step("back", chromedp.Click(chromedp.CSS("main a")), chromedp.WaitVisible(chromedp.ID("portal-users")))
	browsertest.Screenshot(t, ctx, "staff-customer")
	if s := text("#portal-users") + text("#customer-tokens"); !strings.Contains(s, "it@globex.test") || !strings.Contains(s, "their ci") {
		t.Fatalf("customer page: %s", s)
	}

	step("license page", chromedp.Navigate(e.ts.URL+"/staff/licenses/"+a.router.ID), chromedp.WaitVisible(chromedp.ID("downloads")))
	browsertest.Screenshot(t, ctx, "staff-license")
	if s := text("#downloads"); !strings.Contains(s, "portal_user: ops@acme.test") || !strings.Contains(s, "file") {
		t.Fatalf("deliveries: %s", s)
	}

	step("tokens", chromedp.Navigate(e.ts.URL+"/staff/tokens"), chromedp.SendKeys(chromedp.ID("name"), "laptop"),
		chromedp.Click(chromedp.ID("create-token")), chromedp.WaitVisible(chromedp.ID("secret")))
	pat := text("#secret")
	if r := e.staffCall(t, pat, staffapi.WhoAmI, staffapi.Empty{}); r.status != 200 || !strings.Contains(string(r.body), st.Email) {
		t.Fatalf("the personal token shown does not work: %d %s", r.status, r.body)
	}
	step("token list", chromedp.Navigate(e.ts.URL+"/staff/tokens"), chromedp.WaitVisible(chromedp.ID("tokens")))
	browsertest.Screenshot(t, ctx, "staff-tokens")
	step("revoke", chromedp.Click(chromedp.CSS("#tokens a")), chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm")),
		chromedp.WaitVisible(chromedp.ID("flash")))
	wantProblem(t, e.staffCall(t, pat, staffapi.WhoAmI, staffapi.Empty{}), 401, "unauthorized")
}
