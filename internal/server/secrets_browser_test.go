package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/metrum/licensing/internal/entitlements"
)

// TestBrowserSecretsShownOnce (issue 24, items 4 and 7): a refused token form keeps
// what was typed and says why by the field; a new personal access token is shown with
// a copy button, once; a reload (or the back button) says it was shown once and how
// to get another, never a 409 and never a second token; the same for a lease token
// rotated in the portal.
func TestBrowserSecretsShownOnce(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Umbrella", "ops@umbrella.test")
	if err := e.store.CreateStaff(context.Background(), &entitlements.Staff{Email: "iss@staff.test", Role: entitlements.RoleIssuer}, "a long enough password", "test"); err != nil {
		t.Fatal(err)
	}
	b := e.staffBrowser(t, "iss@staff.test")
	b.do("tokens page", chromedp.Navigate(e.ts.URL+"/staff/tokens"), chromedp.WaitVisible(chromedp.ID("create-token")))
	b.do("a 1,000-day token", chromedp.SendKeys(chromedp.ID("name"), "ci runner"),
		chromedp.SetAttributeValue(chromedp.ID("days"), "max", ""), chromedp.SetValue(chromedp.ID("days"), "1000"),
		chromedp.Click(chromedp.ID("create-token")), chromedp.WaitVisible(chromedp.CSS(".field-error")))
	b.shot("console-token-refused")
	if n := b.count(`#days[aria-invalid="true"][aria-describedby="days-error"]`); n != 1 {
		t.Fatalf("the refused field isn't marked for assistive technology (%d)", n)
	}
	if s := b.text(".field-error"); !strings.Contains(s, "1 to 365") {
		t.Fatalf("refusal: %q", s)
	}
	if v, _ := chromedp.Run(b.ctx, chromedp.Value(chromedp.ID("name"))); v != "ci runner" {
		t.Fatalf("the name typed was lost: %q", v)
	}
	if n := e.count(t, `SELECT count(*) FROM staff_tokens`); n != 0 {
		t.Fatalf("a refused form made %d tokens", n)
	}
	b.do("90 days", chromedp.SetValue(chromedp.ID("days"), "90"), chromedp.Click(chromedp.ID("create-token")), chromedp.WaitVisible(chromedp.ID("secret")))
	b.shot("console-token-secret")
	secret := b.text("#secret")
	if !strings.HasPrefix(secret, entitlements.StaffTokenPrefix) {
		t.Fatalf("secret %q", secret)
	}
	if hidden, _ := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.ID("copy"), "hidden")); hidden.Exists {
		t.Fatal("the copy button stayed hidden with the script running")
	}
	if !strings.HasSuffix(b.url(), "/staff/secret") {
		t.Fatalf("the secret page is %s, not reached by a redirect", b.url())
	}
	b.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("secret-gone")))
	b.shot("console-token-reloaded")
	if s := b.text("#secret-gone"); !strings.Contains(s, "shown once") || !strings.Contains(s, "Make a new token") || strings.Contains(s, secret) {
		t.Fatalf("after a reload: %q", s)
	}
	if n := e.count(t, `SELECT count(*) FROM staff_tokens`); n != 1 {
		t.Fatalf("%d tokens after a reload, want 1", n)
	}

	p := e.portalBrowser(t, a.email)
	p.do("rotate", chromedp.Navigate(e.ts.URL+"/portal/licenses/"+a.pilot.ID+"/lease-token"), chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("secret")))
	p.shot("portal-lease-token-secret")
	lease := p.text("#secret")
	p.do("back and forth", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("secret-gone")))
	if s := p.text("#secret-gone"); !strings.Contains(s, "Rotate the lease token again") || strings.Contains(s, lease) {
		t.Fatalf("portal after a reload: %q", s)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_events WHERE action LIKE '%lease_token%' AND subject = $1`, a.pilot.ID); n != 1 {
		t.Fatalf("%d rotations audited after a reload, want 1", n)
	}
}
