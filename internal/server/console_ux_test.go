package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/metrum/licensing/internal/browsertest"
	"github.com/metrum/licensing/internal/entitlements"
)

// shots takes the page at the console's two widths: a laptop (1280×900) and a phone
// (390×844), for a person to look at (SCREENSHOT_DIR).
func (b *staffBrowser) shots(name string) {
	b.t.Helper()
	b.do("phone width", chromedp.EmulateViewport(390, 844))
	b.shot(name + "-390")
	b.do("laptop width", chromedp.EmulateViewport(1280, 900))
	b.shot(name + "-1280")
}

// accessible fails the test on any serious or critical axe-core violation of the page
// as it is now (a page with its data, where TestEveryPageAccessible sees it empty).
func (b *staffBrowser) accessible(name string) {
	b.t.Helper()
	for _, v := range browsertest.Axe(b.t, b.ctx) {
		b.t.Errorf("%s: %s", name, v.String())
	}
}

// has fails unless the text of sel contains every want.
func (b *staffBrowser) has(sel string, want ...string) {
	b.t.Helper()
	got := b.text(sel)
	for _, w := range want {
		if !strings.Contains(got, w) {
			b.t.Fatalf("%s lacks %q:\n%s", sel, w, got)
		}
	}
}

// count is how many elements sel matches.
func (b *staffBrowser) count(sel string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
	if err != nil {
		b.t.Fatal(err)
	}
	return n
}

// js runs a script in the page, for a step.
func js(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](expr)(ctx, t)
		return err
	})
}

func awaitPromise(p *runtime.EvaluateParams) { yes := true; p.AwaitPromise = &yes }

func jsString(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `\'`) + "'"
}

func (e *portalEnv) staffAccounts(t *testing.T, accounts map[string]entitlements.Role) {
	t.Helper()
	for email, role := range accounts {
		if err := e.store.CreateStaff(context.Background(), &entitlements.Staff{Email: email, Role: role}, "a long enough password", "test"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBrowserNewEntitlementShowsDefaultsAndApproverSeesPreview: the new-entitlement
// form finds the customer by name and shows each template default beside its field
// (and another template's when the template changes); a refused value comes back
// beside its field with the input kept; the approver's decision page shows the
// license the template renders (the customer's name, limits in words, what differs
// from the template, the contract reference, the creator, the customer's licenses);
// the contract reference stays on the license page and in the audit trail.
func TestBrowserNewEntitlementShowsDefaultsAndApproverSeesPreview(t *testing.T) {
	e := mustPortal(t, 0, 0)
	ctx := context.Background()
	e.staffAccounts(t, map[string]entitlements.Role{"maker@staff.test": entitlements.RoleIssuer, "checker@staff.test": entitlements.RoleApprover})
	cust := &entitlements.Customer{Name: "Wayne Enterprises", Email: "it@wayne.test"}
	if err := e.svc.CreateCustomer(ctx, cust, e.maker); err != nil {
		t.Fatal(err)
	}
	earlier, _ := e.issue(t, cust.ID, "pilot-30d")

	maker := e.staffBrowser(t, "maker@staff.test")
	maker.do("new entitlement by name", chromedp.Navigate(e.ts.URL+"/staff/entitlements/new"), chromedp.SendKeys(chromedp.ID("customer"), "wayne"),
		chromedp.SetValue(chromedp.ID("template"), "pilot-30d"), chromedp.Click(chromedp.ID("choose-template")), chromedp.WaitVisible(chromedp.ID("entitlement-form")))
	maker.has("#customer-chosen", "Wayne Enterprises", cust.ID)
	maker.has("#limit-token_budget-default", "Template: 25,000,000 tokens")
	maker.has("#limit-max_instances-default", "Template: 2 instances")
	maker.has("#term-default", "exactly 30 days")
	maker.has("#grace-default", "24 hours")
	maker.has("#lease-default", "required", "6 hours")
	maker.has("#features-default", "Admin reports", "Dynamic routing")
	if n := maker.count(`#entitlement-form input[name=feature]:checked`); n != 4 {
		t.Fatalf("%d features ticked: the template's own 4 first", n)
	}
	maker.shots("console-entitlement-new-pilot")

	// Another template: its defaults instead.
	maker.do("enterprise-annual", chromedp.SetValue(chromedp.ID("template"), "enterprise-annual"), chromedp.Click(chromedp.ID("choose-template")),
		chromedp.WaitVisible(chromedp.ID("limit-seats-default")))
	maker.has("#limit-max_instances-default", "Template: 10 instances")
	maker.has("#limit-seats-default", "Template: unlimited")
	maker.has("#term-default", "Template: 365 days", "at most 1,098 days")
	maker.has("#grace-default", "Template: 24 hours", "at most 168 hours")
	maker.do("open the table of defaults", chromedp.Click(chromedp.CSS("#template-defaults summary")))
	maker.has("#template-defaults", "eval-72h", "exactly 72 hours", "Token budget", "1,000,000 tokens", "team", "5,000 requests per second")
	maker.shots("console-entitlement-new")

	// A grace over the template's cap: refused beside the field, the input kept (the
	// browser's own check off, as an old browser or a script would send it).
	maker.do("refused", js(`document.getElementById("entitlement-form").noValidate = true`), chromedp.SendKeys(chromedp.ID("limit-max_instances"), "4"), chromedp.SendKeys(chromedp.ID("grace"), "500"),
		chromedp.SendKeys(chromedp.ID("contract"), "PO-2026-0042"), chromedp.SendKeys(chromedp.ID("note"), "per the signed order form"),
		chromedp.Click(chromedp.ID("create-entitlement")), chromedp.WaitVisible(chromedp.ID("grace-error")))
	maker.has("#grace-error", "grace must be 0 to 168 hours (7 days)")
	maker.has("#form-errors", "Nothing was created: 1 field needs a change")
	for id, want := range map[string]string{"limit-max_instances": "4", "grace": "500", "contract": "PO-2026-0042", "note": "per the signed order form"} {
		if got, _ := chromedp.Run(maker.ctx, chromedp.Value(chromedp.ID(id))); got != want {
			t.Fatalf("the refused form lost %s: %q", id, got)
		}
	}
	maker.shots("console-entitlement-refused")
	maker.do("open the draft", chromedp.SetValue(chromedp.ID("grace"), "48"), chromedp.Click(chromedp.ID("create-entitlement")),
		chromedp.WaitVisible(chromedp.ID("wait-approval")))
	entID := entRe.FindString(maker.url())
	maker.has("#flash", "Wayne Enterprises")

	// The approver sees what the license will say before approving.
	checker := e.staffBrowser(t, "checker@staff.test")
	checker.do("dashboard queue", chromedp.Navigate(e.ts.URL+"/staff/"), chromedp.WaitVisible(chromedp.ID("drafts")))
	checker.has("#drafts", "Wayne Enterprises", "PO-2026-0042", "enterprise-annual")
	checker.do("queue", chromedp.Navigate(e.ts.URL+"/staff/entitlements"), chromedp.WaitVisible(chromedp.ID("entitlements")))
	checker.has("#entitlements", "Wayne Enterprises", "PO-2026-0042")
	checker.shots("console-approval-queue")
	checker.do("decision page", chromedp.Click(chromedp.CSS(`a[href="/staff/entitlements/`+entID+`"]`)), chromedp.WaitVisible(chromedp.ID("preview")))
	checker.has("#preview-customer", "Wayne Enterprises")
	checker.has("#contract-ref", "PO-2026-0042")
	checker.has("#created-by", "maker@staff.test")
	checker.has("#reason", "per the signed order form")
	checker.has("#preview-limits", "Instance limit: 4 instances max_instances", "Concurrency limit: 256 requests at once")
	checker.has("#preview-features", "Audit export audit_export")
	checker.has("#preview-grace", "48 hours")
	checker.has("#preview-term", "365 days")
	checker.has("#preview-instance", "any instance")
	checker.has("#preview-lease", "not required")
	checker.has(`#preview-changes [data-wire=max_instances]`, "4 instances", "10 instances")
	checker.has(`#preview-changes [data-wire=grace_period_seconds]`, "48 hours", "24 hours")
	checker.has("#customer-licenses", earlier.ID, "pilot-30d")
	checker.do("open the payload", chromedp.Click(chromedp.CSS("#payload-details summary")))
	if !strings.Contains(checker.text("#payload"), `"max_instances": 4`) {
		t.Fatalf("the rendered payload lacks the override:\n%s", checker.text("#payload"))
	}
	checker.shots("console-entitlement-decision")
	checker.do("approve", chromedp.Click(chromedp.ID("approve")), chromedp.WaitVisible(chromedp.ID("flash")))
	checker.has("#flash", "Wayne Enterprises")

	maker.do("issue", chromedp.Navigate(e.ts.URL+"/staff/entitlements/"+entID), chromedp.WaitVisible(chromedp.ID("issue")),
		chromedp.Click(chromedp.ID("issue")), chromedp.WaitVisible(chromedp.ID("license-id")))
	licID := maker.text("#license-id")
	maker.has("#contract-ref", "PO-2026-0042")
	maker.has("#limits", "Instance limit: 4 instances")
	maker.has("#grace", "48 hours")
	maker.shots("console-license")
	events, err := e.store.ListAudit(ctx, entitlements.AuditFilter{Subject: licID, Action: "license.issue", Limit: 5})
	if err != nil || len(events) != 1 || events[0].Details["contract_ref"] != "PO-2026-0042" {
		t.Fatalf("the issue event lacks the contract reference: %+v %v", events, err)
	}
	created, _ := e.store.ListAudit(ctx, entitlements.AuditFilter{Subject: entID, Action: "entitlement.create", Limit: 5})
	if len(created) != 1 || created[0].Details["contract_ref"] != "PO-2026-0042" || created[0].Details["reason"] != "per the signed order form" {
		t.Fatalf("the create event: %+v", created)
	}
	// A revocation without a reason comes back beside its field (the browser's own
	// check off), the choice kept.
	checker.do("revoke", chromedp.Navigate(e.ts.URL+"/staff/licenses/"+licID+"/actions/revoke"), chromedp.WaitVisible(chromedp.ID("confirm")),
		js(`document.querySelectorAll("form").forEach(f => f.noValidate = true); true`), chromedp.Click(chromedp.ID("confirm")),
		chromedp.WaitVisible(chromedp.ID("reason-error")))
	checker.has("#reason-error", "a reason of 1 to 200 characters")
	checker.has("#confirm-customer", "Wayne Enterprises")
	checker.shots("console-revoke-refused")
	checker.do("customer page", chromedp.Navigate(e.ts.URL+"/staff/customers/"+cust.ID), chromedp.WaitVisible(chromedp.ID("customer-licenses")))
	checker.has("#customer-licenses", licID, "PO-2026-0042", earlier.ID)
	checker.has("#customer-entitlements", entID, "PO-2026-0042")
	checker.shots("console-customer")
	checker.do("dashboard", chromedp.Navigate(e.ts.URL+"/staff/"), chromedp.WaitVisible(chromedp.ID("chart-expiries")))
	checker.shots("console-dashboard")
	// The signed file has no member for it (formats.md section 3).
	l, _ := e.store.GetLicense(ctx, licID)
	if r := e.verifyBytes(t, l.File, "genai-smart-router"); r.Status != "valid" || strings.Contains(string(l.File), "PO-2026") {
		t.Fatalf("the signed file: %s %s", r.Status, r.Reason)
	}
}

// TestBrowserRenewOpensAFormAndConfirmation: Renew… opens a form (template, term,
// reason); a missing reason comes back beside its field with the choices kept; the
// confirmation shows the license the renewal would issue; only then is the draft
// opened. The license page then shows the pending renewal (a link) and offers no
// second one; asking for one anyway says what is open and links to it (409). The
// whole flow works by keyboard alone. A superseded license offers no successor.
func TestBrowserRenewOpensAFormAndConfirmation(t *testing.T) {
	e := mustPortal(t, 0, 0)
	ctx := context.Background()
	a := e.tenant(t, "Umbrella Corp", "ops@umbrella.test")
	e.staffAccounts(t, map[string]entitlements.Role{"maker@staff.test": entitlements.RoleIssuer})
	maker := e.staffBrowser(t, "maker@staff.test")
	lic := "/staff/licenses/" + a.router.ID
	maker.do("license page", chromedp.Navigate(e.ts.URL+lic), chromedp.WaitVisible(chromedp.ID("renew")))
	maker.has("#limits", "Instance limit: 10 instances max_instances")
	maker.has("#features", "Usage export usage_export")
	maker.shots("console-license-actions")

	// By keyboard: focus Renew…, Enter; the form.
	maker.do("renew by keyboard", chromedp.Focus(chromedp.ID("renew")), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("successor-form")))
	maker.has("#successor-of", "Umbrella Corp", "enterprise-annual")
	maker.has("#term-default", "365 days for enterprise-annual")
	if v, _ := chromedp.Run(maker.ctx, chromedp.Value(chromedp.ID("successor-template"))); v != "enterprise-annual" {
		t.Fatalf("the renewal's template defaults to %q", v)
	}
	maker.shots("console-renew-form")
	// No reason: refused beside the field, the choices kept (the browser's own check off,
	// as an old browser or a script would send it).
	maker.do("no reason", js(`document.getElementById("successor-form").noValidate = true`),
		chromedp.SendKeys(chromedp.ID("term"), "400"), chromedp.SendKeys(chromedp.ID("contract"), "PO-2027-0001"),
		chromedp.Click(chromedp.ID("review")), chromedp.WaitVisible(chromedp.ID("reason-error")))
	maker.has("#reason-error", "say why")
	for id, want := range map[string]string{"term": "400", "contract": "PO-2027-0001"} {
		if got, _ := chromedp.Run(maker.ctx, chromedp.Value(chromedp.ID(id))); got != want {
			t.Fatalf("the refused renewal form lost %s: %q", id, got)
		}
	}
	maker.shots("console-renew-refused")
	// The reason, then Enter in its field submits; the confirmation shows the preview.
	maker.do("review by keyboard", chromedp.Focus(chromedp.ID("reason")), chromedp.KeyEvent("contract renewed for a year"),
		chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("confirm")))
	maker.has("#confirm-what", "renewal", a.router.ID, "Umbrella Corp")
	maker.has("#preview-customer", "Umbrella Corp")
	maker.has("#preview-term", "400 days after the current expiry")
	maker.has("#preview-replaces", a.router.ID)
	maker.has("#confirm-reason", "contract renewed for a year")
	before := e.changes(t)
	maker.shots("console-renew-confirm")
	if after := e.changes(t); after != before {
		t.Fatal("the confirmation opened something before it was confirmed")
	}
	maker.do("confirm by keyboard", chromedp.Focus(chromedp.ID("confirm")), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("entitlement-id")))
	renewal := entRe.FindString(maker.url())
	maker.has("#reason", "contract renewed for a year")
	maker.has("#contract-ref", "PO-2027-0001")

	// The license page shows the pending renewal and offers no second one.
	maker.do("license page again", chromedp.Navigate(e.ts.URL+lic), chromedp.WaitVisible(chromedp.ID("pending-successor")))
	maker.has("#pending-successor", "renewal", renewal, "draft")
	if href, _ := chromedp.Run(maker.ctx, chromedp.Evaluate[string](`document.getElementById("pending-link").getAttribute("href")`)); href != "/staff/entitlements/"+renewal {
		t.Fatalf("the pending renewal links to %q", href)
	}
	if n := maker.count("#renew, #replace, #top-up"); n != 0 {
		t.Fatalf("%d successor actions offered while a renewal is open", n)
	}
	maker.shots("console-license-pending")
	// A second renewal anyway (an old tab): the form says what is open and links to it.
	maker.do("second renewal", chromedp.Navigate(e.ts.URL+lic+"/successor?kind=renewal"), chromedp.WaitVisible(chromedp.ID("conflict-link")))
	maker.has("#form-error", "already has an open renewal", renewal)
	if st, body := browsertest.Fetch(t, maker.ctx, lic+"/successor?kind=top-up"); st != 409 || !strings.Contains(body, renewal) {
		t.Fatalf("a second successor's form: %d", st)
	}
	maker.shots("console-renew-conflict")
	csrf, _ := chromedp.Run(maker.ctx, chromedp.Evaluate[string](`document.querySelector("input[name=_csrf]").value`))
	status, page := postInPage(t, maker, lic+"/successor", "_csrf="+csrf+"&kind=renewal&reason=again&confirm=yes")
	if status != 409 || !strings.Contains(page, `href="/staff/entitlements/`+renewal+`"`) || strings.Contains(page, "Something went wrong") {
		t.Fatalf("a second renewal posted: %d\n%.600s", status, page)
	}

	// Issued: the old license is in its changeover, and offers nothing.
	if _, err := e.svc.Approve(ctx, renewal, e.check); err != nil {
		t.Fatal(err)
	}
	renewalLic, err := e.svc.Issue(ctx, renewal, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	maker.do("replaced license", chromedp.Navigate(e.ts.URL+lic), chromedp.WaitVisible(chromedp.ID("superseded-by")))
	if n := maker.count("#renew, #replace, #top-up, #pending-successor"); n != 0 {
		t.Fatalf("a replaced license offers %d successor actions", n)
	}
	maker.has("#status", "superseded by") // the test issuer's changeover is 0
	if st, _ := browsertest.Fetch(t, maker.ctx, lic+"/successor?kind=renewal"); st != 409 {
		t.Fatalf("the renewal form of a replaced license: %d", st)
	}
	maker.has("#no-successor", "It is replaced", renewalLic.ID)
	maker.shots("console-license-superseded")

	// The customer's portal reads the same way.
	portal := e.portalBrowser(t, a.email)
	portal.do("portal", chromedp.Navigate(e.ts.URL+"/portal/"), chromedp.WaitVisible(chromedp.ID("licenses")))
	portal.has("#licenses", "Token budget: 25,000,000 tokens", "Usage window: 30 days")
	portal.shots("portal-licenses")
	portal.do("portal license", chromedp.Navigate(e.ts.URL+"/portal/licenses/"+a.pilot.ID), chromedp.WaitVisible(chromedp.ID("limits")))
	portal.has("#limits", "Token budget: 25,000,000 tokens token_budget", "Usage window: 30 days usage_window_seconds")
	portal.has("#lease", "6 hours")
	portal.shots("portal-license")
}

// postInPage posts a form body from the signed-in page and returns the status and
// the page it answers (as the browser would render it).
func postInPage(t *testing.T, b *staffBrowser, path, body string) (int, string) {
	t.Helper()
	type result struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	r, err := chromedp.Run(b.ctx, chromedp.Evaluate[result](`fetch(`+jsString(path)+`, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}, body: `+
		jsString(body)+`}).then(async r => ({status: r.status, body: await r.text()}))`, awaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	return r.Status, r.Body
}
