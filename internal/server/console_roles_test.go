package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/metrum/licensing/internal/entitlements"
)

// TestConsoleRolesAndCSRF: each role's browser session is refused (403, nothing
// changed) every console action above its level, with the button forged (a valid
// CSRF token, the right form); and a request without the CSRF token changes nothing.
func TestConsoleRolesAndCSRF(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme", "ops@acme.test")
	ctx := context.Background()
	sessions := map[entitlements.Role]*http.Client{}
	for _, r := range []entitlements.Role{entitlements.RoleViewer, entitlements.RoleIssuer, entitlements.RoleApprover, entitlements.RoleAdmin} {
		email := string(r) + "@console.test"
		if err := e.store.CreateStaff(ctx, &entitlements.Staff{Email: email, Role: r}, "a long enough password", "test"); err != nil {
			t.Fatal(err)
		}
		c := client(t)
		env := &env{ts: e.ts}
		resp := env.mustLogin(t, c, email, "a long enough password")
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in %s: %d", email, resp.StatusCode)
		}
		sessions[r] = c
	}
	draft, err := e.svc.CreateEntitlement(ctx, issuanceInput(a.customer.ID), e.maker)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := e.store.ListKeys(ctx)
	kid := keys[0].KID
	type action struct {
		path string
		form url.Values
		min  entitlements.Role
	}
	actions := []action{
		{"/staff/customers", url.Values{"name": {"New Co"}}, entitlements.RoleIssuer},
		{"/staff/customers/" + a.customer.ID, url.Values{"name": {"Renamed"}}, entitlements.RoleIssuer},
		{"/staff/entitlements", url.Values{"customer": {a.customer.ID}, "template": {"enterprise-annual"}}, entitlements.RoleIssuer},
		{"/staff/entitlements/" + draft.ID + "/approve", nil, entitlements.RoleApprover},
		{"/staff/entitlements/" + draft.ID + "/reject", url.Values{"reason": {"x"}}, entitlements.RoleApprover},
		{"/staff/entitlements/" + draft.ID + "/cancel", url.Values{"reason": {"x"}}, entitlements.RoleIssuer},
		{"/staff/entitlements/" + draft.ID + "/issue", nil, entitlements.RoleIssuer},
		{"/staff/licenses/" + a.router.ID + "/successor", url.Values{"kind": {"renewal"}}, entitlements.RoleIssuer},
		{"/staff/licenses/" + a.router.ID + "/actions/revoke", url.Values{"reason": {"x"}}, entitlements.RoleApprover},
		{"/staff/licenses/" + a.router.ID + "/actions/suspend", url.Values{"reason": {"x"}}, entitlements.RoleApprover},
		{"/staff/licenses/" + a.pilot.ID + "/lease-token", nil, entitlements.RoleIssuer},
		{"/staff/customers/" + a.customer.ID + "/portal-users", url.Values{"email": {"x@acme.test"}}, entitlements.RoleIssuer},
		{"/staff/customers/" + a.customer.ID + "/tokens", url.Values{"name": {"x"}}, entitlements.RoleIssuer},
		{"/staff/bundles/publish", url.Values{"product": {"genai-smart-router"}}, entitlements.RoleApprover},
		{"/staff/keys/generate", url.Values{"product": {"genai-smart-router"}, "purpose": {"license"}, "alg": {"EdDSA"}}, entitlements.RoleAdmin},
		{"/staff/keys/rotate", url.Values{"product": {"genai-smart-router"}, "purpose": {"license"}, "reason": {"x"}}, entitlements.RoleAdmin},
		{"/staff/keys/" + kid + "/retire", url.Values{"reason": {"x"}}, entitlements.RoleAdmin},
		{"/staff/keys/" + kid + "/not-after", url.Values{"at": {"2026-01-01T00:00:00Z"}, "reason": {"x"}}, entitlements.RoleAdmin},
		{"/staff/accounts", url.Values{"email": {"n@console.test"}, "role": {"admin"}, "password": {"a long enough password"}}, entitlements.RoleAdmin},
		{"/staff/accounts/1", url.Values{"role": {"admin"}, "state": {"enabled"}}, entitlements.RoleAdmin},
	}
	post := func(c *http.Client, path string, form url.Values, withCSRF bool) int {
		t.Helper()
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		if withCSRF {
			f.Set("_csrf", e.staffCSRF(t, c))
		}
		req, _ := http.NewRequest("POST", e.ts.URL+path, strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	order := []entitlements.Role{entitlements.RoleViewer, entitlements.RoleIssuer, entitlements.RoleApprover, entitlements.RoleAdmin}
	refused := 0
	for _, act := range actions {
		for _, r := range order {
			if r.AtLeast(act.min) {
				break
			}
			before := e.changes(t)
			if st := post(sessions[r], act.path, act.form, true); st != http.StatusForbidden {
				t.Errorf("%s as %s: %d, want 403", act.path, r, st)
			}
			if after := e.changes(t); after != before {
				t.Fatalf("a refused %s as %s changed something", act.path, r)
			}
			refused++
		}
		// Without the CSRF token even the admin changes nothing.
		before := e.changes(t)
		if st := post(sessions[entitlements.RoleAdmin], act.path, act.form, false); st != http.StatusBadRequest && st != http.StatusForbidden {
			t.Errorf("%s without CSRF: %d", act.path, st)
		}
		if after := e.changes(t); after != before {
			t.Fatalf("%s without a CSRF token changed something", act.path)
		}
	}
	if refused < 30 {
		t.Fatalf("only %d refusals checked", refused)
	}
	// The issuer may edit the customer; the page then shows the new name and the
	// customer's entitlements; a lease license's page shows its lease history.
	if st := post(sessions[entitlements.RoleIssuer], "/staff/customers/"+a.customer.ID, url.Values{"name": {"Acme Renamed"}, "email": {"it@acme.test"}}, true); st != http.StatusSeeOther {
		t.Fatalf("edit: %d", st)
	}
	resp, _ := sessions[entitlements.RoleViewer].Get(e.ts.URL + "/staff/customers/" + a.customer.ID)
	page := readBody(t, resp)
	contains(t, page, "Acme Renamed")
	contains(t, page, `id="customer-entitlements"`)
	e.lease(t, a, "hist-host")
	resp, _ = sessions[entitlements.RoleViewer].Get(e.ts.URL + "/staff/licenses/" + a.pilot.ID)
	page = readBody(t, resp)
	contains(t, page, "hist-host")
	// A viewer has nothing to do with a license: no Actions heading at all; an
	// approver has its actions.
	if strings.Contains(page, `id="license-actions"`) {
		t.Fatal("a viewer's license page has an Actions section")
	}
	resp, _ = sessions[entitlements.RoleApprover].Get(e.ts.URL + "/staff/licenses/" + a.router.ID)
	page = readBody(t, resp)
	contains(t, page, `id="license-actions"`)
	contains(t, page, `id="revoke"`)
	// Dashboard days out of range: refused beside the field with what was typed, the
	// list at 30 days; in range, as asked.
	for asked, want := range map[string]int{"9999": 422, "0": 422, "soon": 422, "45": 200} {
		resp, _ = sessions[entitlements.RoleViewer].Get(e.ts.URL + "/staff/?days=" + asked)
		page = readBody(t, resp)
		if resp.StatusCode != want {
			t.Fatalf("dashboard days=%s: %d, want %d", asked, resp.StatusCode, want)
		}
		if want == 422 {
			contains(t, page, `id="days-error"`)
			contains(t, page, `value="`+asked+`"`)
			contains(t, page, "Expiring within 30 days")
		} else {
			contains(t, page, "Expiring within 45 days")
		}
	}
}

// staffCSRF reads a console page's CSRF token.
func (e *portalEnv) staffCSRF(t *testing.T, c *http.Client) string {
	t.Helper()
	resp, err := c.Get(e.ts.URL + "/staff/accounts")
	if err != nil {
		t.Fatal(err)
	}
	m := csrfRe.FindStringSubmatch(readBody(t, resp))
	if m == nil {
		t.Fatal("no CSRF token")
	}
	return m[1]
}
