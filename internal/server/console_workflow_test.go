package server_test

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/metrum/licensing/internal/browsertest"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

// staffBrowser is one person's Chromium (its own cookies) in a browser test, with the
// steps every browser test of this package takes.
type staffBrowser struct {
	t   *testing.T
	ctx context.Context
	e   *portalEnv
}

// browser starts a Chromium for a test.
func (e *portalEnv) browser(t *testing.T) *staffBrowser {
	return &staffBrowser{t: t, ctx: browsertest.New(t), e: e}
}

// staffBrowser signs a staff account in, in its own Chromium.
func (e *portalEnv) staffBrowser(t *testing.T, email string) *staffBrowser {
	t.Helper()
	b := e.browser(t)
	b.do("sign in "+email, chromedp.Navigate(e.ts.URL+"/staff/"), chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), "a long enough password"), chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("chart-expiries")))
	return b
}

func (b *staffBrowser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *staffBrowser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *staffBrowser) url() string {
	u, _ := chromedp.Run(b.ctx, chromedp.Location())
	return u
}

func (b *staffBrowser) shot(name string) { browsertest.Screenshot(b.t, b.ctx, name) }

var licRe, entRe = regexp.MustCompile(`lic_[0-9A-Z]{26}`), regexp.MustCompile(`ent_[0-9A-Z]{26}`)

func TestBrowserConsoleWorkflow(t *testing.T) {
	e := mustPortal(t, 0, 0)
	ctx := context.Background()
	for email, role := range map[string]entitlements.Role{"maker@staff.test": entitlements.RoleIssuer,
		"checker@staff.test": entitlements.RoleApprover, "root@staff.test": entitlements.RoleAdmin} {
		if err := e.store.CreateStaff(ctx, &entitlements.Staff{Email: email, Role: role}, "a long enough password", "test"); err != nil {
			t.Fatal(err)
		}
	}
	maker := e.staffBrowser(t, "maker@staff.test")
	maker.shot("console-dashboard")

	// A customer.
	maker.do("customers", chromedp.Click(chromedp.CSS(`nav a[href="/staff/customers"]`)), chromedp.WaitVisible(chromedp.ID("create-customer")),
		chromedp.SendKeys(chromedp.ID("name"), "Wayne Enterprises"), chromedp.Click(chromedp.ID("create-customer")),
		chromedp.WaitVisible(chromedp.ID("customer-name")))
	custID := regexp.MustCompile(`cus_[0-9A-Z]{26}`).FindString(maker.url())

	// An entitlement from a template that shows only its overrides.
	maker.do("new entitlement", chromedp.Navigate(e.ts.URL+"/staff/entitlements/new?customer="+custID+"&template=enterprise-annual"),
		chromedp.WaitVisible(chromedp.ID("entitlement-form")))
	form := maker.text("#entitlement-form")
	if !strings.Contains(form, "max_instances") || strings.Contains(form, "max_tenants") {
		t.Fatalf("the form shows other templates' overrides: %s", form)
	}
	maker.shot("console-entitlement-new")
	maker.do("open the draft", chromedp.SendKeys(chromedp.ID("limit-max_instances"), "4"), chromedp.Click(chromedp.ID("create-entitlement")),
		chromedp.WaitVisible(chromedp.ID("wait-approval")))
	entID := entRe.FindString(maker.url())
	maker.shot("console-entitlement-draft")
	// The creator has no approve button, and a forged one is refused by the server.
	if n, _ := chromedp.Run(maker.ctx, chromedp.Evaluate[int](`document.querySelectorAll("#approve").length`)); n != 0 {
		t.Fatal("the creator sees an approve button")
	}
	csrf, _ := chromedp.Run(maker.ctx, chromedp.Evaluate[string](`document.querySelector("input[name=_csrf]").value`))
	st, _ := browsertest.Fetch(t, maker.ctx, "/staff/entitlements/"+entID+"/approve?_csrf="+url.QueryEscape(csrf))
	forged, err := chromedp.Run(maker.ctx, chromedp.Evaluate[int](`(async () => { const f = new FormData(); f.set("_csrf", `+
		"`"+csrf+"`"+`); return (await fetch("/staff/entitlements/`+entID+`/approve", {method: "POST", body: new URLSearchParams(f)})).status })()`,
		func(p *runtime.EvaluateParams) { yes := true; p.AwaitPromise = &yes }))
	if err != nil || forged != 403 || st == 200 {
		t.Fatalf("forged approval by the creator: %d (GET %d) %v", forged, st, err)
	}

	// Another person approves.
	checker := e.staffBrowser(t, "checker@staff.test")
	checker.do("queue", chromedp.Navigate(e.ts.URL+"/staff/entitlements"), chromedp.WaitVisible(chromedp.ID("entitlements")))
	checker.shot("console-approval-queue")
	checker.do("approve", chromedp.Click(chromedp.CSS(`a[href="/staff/entitlements/`+entID+`"]`)), chromedp.WaitVisible(chromedp.ID("approve")),
		chromedp.Click(chromedp.ID("approve")), chromedp.WaitVisible(chromedp.ID("flash")))
	if s := checker.text("#state"); s != "approved" {
		t.Fatalf("after approval: %s", s)
	}

	// The maker issues; the downloaded file verifies.
	issue := func(b *staffBrowser, ent string) string {
		b.t.Helper()
		b.do("issue "+ent, chromedp.Navigate(e.ts.URL+"/staff/entitlements/"+ent), chromedp.WaitVisible(chromedp.ID("issue")),
			chromedp.Click(chromedp.ID("issue")), chromedp.WaitVisible(chromedp.ID("license-id")))
		return b.text("#license-id")
	}
	approve := func(ent string) {
		checker.do("approve "+ent, chromedp.Navigate(e.ts.URL+"/staff/entitlements/"+ent), chromedp.WaitVisible(chromedp.ID("approve")),
			chromedp.Click(chromedp.ID("approve")), chromedp.WaitVisible(chromedp.ID("flash")))
	}
	lic1 := issue(maker, entID)
	maker.shot("console-license")
	status, body := browsertest.Fetch(t, maker.ctx, "/staff/licenses/"+lic1+"/file")
	if r := e.verifyBytes(t, []byte(body), "genai-smart-router"); status != 200 || r.Status != "valid" || r.Limits["max_instances"] != 4 {
		t.Fatalf("downloaded license: %d %s %s %v", status, r.Status, r.Reason, r.Limits)
	}

	// Renew, then top up the renewal.
	// Renew… and Top up… open a form and a confirmation before the draft.
	successor := func(button, reason string) {
		maker.do(button, chromedp.Click(chromedp.ID(button)), chromedp.WaitVisible(chromedp.ID("successor-form")),
			chromedp.SendKeys(chromedp.ID("reason"), reason), chromedp.Click(chromedp.ID("review")), chromedp.WaitVisible(chromedp.ID("confirm")),
			chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("entitlement-id")))
	}
	successor("renew", "yearly renewal")
	renewal := entRe.FindString(maker.url())
	approve(renewal)
	lic2 := issue(maker, renewal)
	if s := maker.text("#supersedes"); s != lic1 {
		t.Fatalf("renewal lineage: %q", s)
	}
	successor("top-up", "5M tokens bought")
	topup := entRe.FindString(maker.url())
	approve(topup)
	lic3 := issue(maker, topup)
	l3, _ := e.store.GetLicense(ctx, lic3)
	if l3.Supersedes != lic2 || l3.Terms.Limits["token_budget"] != 5_000_000 {
		t.Fatalf("top-up: supersedes %s, budget %d", l3.Supersedes, l3.Terms.Limits["token_budget"])
	}
	maker.do("lineage back", chromedp.Navigate(e.ts.URL+"/staff/licenses/"+lic2), chromedp.WaitVisible(chromedp.ID("superseded-by")))
	if s := maker.text("#superseded-by"); s != lic3 {
		t.Fatalf("lineage forwards: %q", s)
	}

	// Revoke with confirmation; the next bundle lists it; the verifier says revoked.
	checker.do("revoke", chromedp.Navigate(e.ts.URL+"/staff/licenses/"+lic3), chromedp.Click(chromedp.ID("revoke")),
		chromedp.WaitVisible(chromedp.ID("confirm-customer")))
	if s := checker.text("#confirm-customer"); s != "Wayne Enterprises" {
		t.Fatalf("confirmation names %q", s)
	}
	checker.shot("console-revoke-confirm")
	checker.do("confirm", chromedp.SendKeys(chromedp.ID("reason"), "contract ended"), chromedp.Click(chromedp.ID("confirm")),
		chromedp.WaitVisible(chromedp.ID("flash")))
	if f := checker.text("#flash"); !strings.Contains(f, lic3+" is revoked") || !strings.Contains(f, "revocation bundle") {
		t.Fatalf("flash: %q", f)
	}
	checker.do("publish", chromedp.Navigate(e.ts.URL+"/staff/bundles"), chromedp.Click(chromedp.ID("publish")), chromedp.WaitVisible(chromedp.ID("bundles")))
	checker.shot("console-bundles")
	b, err := e.store.GetBundle(ctx, "genai-smart-router", 0)
	if err != nil {
		t.Fatal(err)
	}
	res := e.verifyWithBundle(t, l3.File, b.File)
	if res.Reason != verify.ReasonRevoked {
		t.Fatalf("the verifier with the new bundle: %s %s", res.Status, res.Reason)
	}

	// An admin rotates a key: a standby first, then the rotation after a confirmation.
	admin := e.staffBrowser(t, "root@staff.test")
	admin.do("keys", chromedp.Navigate(e.ts.URL+"/staff/keys"), chromedp.WaitVisible(chromedp.ID("generate")), chromedp.Click(chromedp.ID("generate")),
		chromedp.WaitVisible(chromedp.ID("flash")))
	admin.shot("console-keys")
	admin.do("rotate", chromedp.Click(chromedp.ID("rotate")), chromedp.WaitVisible(chromedp.ID("confirm")))
	admin.shot("console-key-rotate-confirm")
	admin.do("confirm rotate", chromedp.SendKeys(chromedp.ID("reason"), "yearly rotation"), chromedp.Click(chromedp.ID("confirm")),
		chromedp.WaitVisible(chromedp.ID("flash")))
	if f := admin.text("#flash"); !strings.Contains(f, "Rotated") {
		t.Fatalf("rotation: %q", f)
	}

	// The audit trail shows each step and verifies.
	admin.do("audit", chromedp.Navigate(e.ts.URL+"/staff/audit"), chromedp.Click(chromedp.ID("verify-chain")), chromedp.WaitVisible(chromedp.ID("chain-result")))
	admin.shot("console-audit")
	if s := admin.text("#chain-result"); !strings.Contains(s, "intact") {
		t.Fatalf("chain: %q", s)
	}
	trail := admin.text("#audit")
	for _, want := range []string{"customer.create", "entitlement.create", "entitlement.approve", "license.issue", "license.revoke", "key.activate", "staff.sign_in", "license.download"} {
		if !strings.Contains(trail, want) {
			t.Errorf("audit page lacks %s", want)
		}
	}
	admin.do("accounts", chromedp.Navigate(e.ts.URL+"/staff/accounts"), chromedp.WaitVisible(chromedp.ID("accounts")))
	admin.shot("console-accounts")
	admin.do("licenses", chromedp.Navigate(e.ts.URL+"/staff/licenses?product=genai-smart-router"), chromedp.WaitVisible(chromedp.ID("licenses")))
	admin.shot("console-licenses")
	admin.do("dashboard", chromedp.Navigate(e.ts.URL+"/staff/"), chromedp.WaitVisible(chromedp.ID("chart-issued")))
	admin.shot("console-dashboard-after")
	// The plots were first drawn before anything was issued; they show the licenses
	// issued since, not a cached zero.
	var issued int
	if err := e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM licenses`).Scan(&issued); err != nil || issued == 0 {
		t.Fatalf("licenses issued by the workflow: %d %v", issued, err)
	}
	if s := admin.text("#chart-issued"); !strings.Contains(s, fmt.Sprintf("issued: %d", issued)) {
		t.Fatalf("issued chart after %d issued: %s", issued, s)
	}
	_ = licRe
}
