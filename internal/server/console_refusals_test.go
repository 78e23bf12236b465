package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/metrum/licensing/internal/entitlements"
)

// TestConsoleRefusalsKeepTheForm: every refusal of the console's entitlement,
// license-action and customer forms answers 422 (the input) or 409 (the state) with
// the same form again, the message beside its field and the input kept, never the
// error page; a conflict links to what it conflicts with. Nothing is changed.
func TestConsoleRefusalsKeepTheForm(t *testing.T) {
	e := mustPortal(t, 0, 0)
	ctx := context.Background()
	a := e.tenant(t, "Acme Corp", "ops@acme.test")
	e.staffAccounts(t, map[string]entitlements.Role{"maker@console.test": entitlements.RoleIssuer, "checker@console.test": entitlements.RoleApprover})
	session := func(email string) *http.Client {
		c := client(t)
		resp := (&env{ts: e.ts}).mustLogin(t, c, email, "a long enough password")
		resp.Body.Close()
		return c
	}
	maker, checker := session("maker@console.test"), session("checker@console.test")
	draft, err := e.svc.CreateEntitlement(ctx, issuanceInput(a.customer.ID), e.maker)
	if err != nil {
		t.Fatal(err)
	}
	renewal, err := e.svc.CreateSuccessor(ctx, entitlements.SuccessorInput{Kind: entitlements.KindRenewal, LicenseID: a.pilot.ID}, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	post := func(c *http.Client, path string, form url.Values) (int, string) {
		t.Helper()
		form.Set("_csrf", e.staffCSRF(t, c))
		req, _ := http.NewRequest("POST", e.ts.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readBody(t, resp)
	}
	cases := []struct {
		name   string
		c      *http.Client
		path   string
		form   url.Values
		status int
		want   []string
	}{
		{"a limit out of range", maker, "/staff/entitlements", url.Values{"customer": {a.customer.ID}, "template": {"enterprise-annual"},
			"limit.max_instances": {"99999999999999999999"}, "contract": {"PO-77"}}, 422,
			[]string{`id="limit-max_instances-error"`, `value="99999999999999999999"`, `value="PO-77"`, `aria-invalid="true"`}},
		{"a term over the template's", maker, "/staff/entitlements", url.Values{"customer": {a.customer.ID}, "template": {"enterprise-annual"},
			"term_days": {"5000"}}, 422, []string{`id="term-error"`, "1098", `value="5000"`}},
		{"no feature ticked", maker, "/staff/entitlements", url.Values{"customer": {a.customer.ID}, "template": {"pilot-30d"},
			"features_shown": {"1"}}, 422, []string{`id="features-error"`, "tick at least one feature"}},
		{"an unknown customer", maker, "/staff/entitlements", url.Values{"customer": {"nobody at all"}, "template": {"pilot-30d"}}, 422,
			[]string{`id="customer-error"`, "no customer matches", `value="nobody at all"`}},
		{"a rejection without a reason", checker, "/staff/entitlements/" + draft.ID + "/reject", url.Values{"reason": {""}}, 422,
			[]string{`id="reject-error"`, "a reason is required", `id="preview"`}},
		{"a cancel without a reason", maker, "/staff/entitlements/" + draft.ID + "/cancel", url.Values{"reason": {" "}}, 422,
			[]string{`id="cancel-error"`, "a reason is required"}},
		{"issuing a draft", maker, "/staff/entitlements/" + draft.ID + "/issue", url.Values{}, 409,
			[]string{`id="action-error"`, "only an approved entitlement can be issued"}},
		{"a revocation without a reason", checker, "/staff/licenses/" + a.router.ID + "/actions/revoke", url.Values{"reason": {""}, "scope": {"only"}}, 422,
			[]string{`id="reason-error"`, "a reason of 1 to 200 characters"}},
		{"reinstating an active license", checker, "/staff/licenses/" + a.router.ID + "/actions/reinstate", url.Values{"reason": {"oops"}}, 409,
			[]string{`id="form-error"`, "t be reinstated", `value="oops"`}},
		{"a second renewal", maker, "/staff/licenses/" + a.pilot.ID + "/successor", url.Values{"kind": {"renewal"}, "reason": {"again"},
			"contract": {"PO-9"}}, 409, []string{`id="conflict-link"`, `href="/staff/entitlements/` + renewal.ID + `"`, `value="PO-9"`}},
		{"a top-up without a reason", maker, "/staff/licenses/" + a.router.ID + "/successor", url.Values{"kind": {"top-up"},
			"template": {"credit-pack-25m"}}, 422, []string{`id="reason-error"`, `<option value="credit-pack-25m" selected`}},
		{"a top-up with a plan", maker, "/staff/licenses/" + a.router.ID + "/successor", url.Values{"kind": {"top-up"}, "template": {"pilot-30d"},
			"reason": {"x"}}, 422, []string{`id="template-error"`, "not a credit pack"}},
		{"a customer without a name", maker, "/staff/customers", url.Values{"name": {""}, "email": {"it@new.test"}}, 422,
			[]string{`id="name-error"`, `value="it@new.test"`}},
		{"a customer's bad email", maker, "/staff/customers/" + a.customer.ID, url.Values{"name": {"Acme Renamed"}, "email": {"nope"}}, 422,
			[]string{`id="edit-email-error"`, `value="Acme Renamed"`, `value="nope"`}},
	}
	for _, c := range cases {
		before := e.changes(t)
		status, page := post(c.c, c.path, c.form)
		if status != c.status || strings.Contains(page, "Something went wrong") {
			t.Errorf("%s: %d, want %d\n%.400s", c.name, status, c.status, page)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(page, w) {
				t.Errorf("%s: the page lacks %s", c.name, w)
			}
		}
		if after := e.changes(t); after != before {
			t.Errorf("%s changed something", c.name)
		}
	}
}
