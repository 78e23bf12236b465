package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

// TestCustomerTokensOfADisabledUserStop (issue 20): a customer API token made by a
// portal user stops working when the user is disabled; one staff made for the
// customer keeps working; tokens expire after 90 days unless chosen otherwise, and a
// token can be renewed.
func TestCustomerTokensOfADisabledUserStop(t *testing.T) {
	e := mustPortal(t, 0, 0)
	ctx := context.Background()
	a := e.tenant(t, "Acme", "ops@acme.test")
	users, err := e.store.ListPortalUsers(ctx, a.customer.ID)
	if err != nil || len(users) != 1 {
		t.Fatalf("portal users: %v %v", users, err)
	}
	u := users[0]
	p := &entitlements.Principal{CustomerID: a.customer.ID, UserID: u.ID, Kind: entitlements.PrincipalPortalUser, Actor: u.Email}
	tok, rec, err := e.portal.CreateToken(ctx, p, "laptop script", 0)
	if err != nil {
		t.Fatal(err)
	}
	if rec.ExpiresAt == nil || time.Until(*rec.ExpiresAt) < 89*24*time.Hour || time.Until(*rec.ExpiresAt) > 90*24*time.Hour+time.Minute {
		t.Fatalf("default expiry %v, want 90 days", rec.ExpiresAt)
	}
	path := "/v1/licenses/" + a.router.ID
	if r := e.api(t, tok, path); r.status != 200 {
		t.Fatalf("the user's token: %d", r.status)
	}
	if err := e.portal.SetPortalUserDisabled(ctx, a.customer.ID, u.ID, true, e.maker); err != nil {
		t.Fatal(err)
	}
	if r := e.api(t, tok, path); r.status != http.StatusUnauthorized {
		t.Fatalf("the disabled user's token: %d", r.status)
	}
	if r := e.api(t, a.token, path); r.status != 200 {
		t.Fatalf("the token staff made for the customer: %d", r.status)
	}
	// Never, only by explicit choice; renewal moves an expiry forward.
	_, forever, err := e.portal.StaffCreateToken(ctx, a.customer.ID, "air-gap mirror", entitlements.TokenNeverExpires, e.maker)
	if err != nil || forever.ExpiresAt != nil {
		t.Fatalf("an explicit never: %v %v", forever.ExpiresAt, err)
	}
	e.store.Pool().Exec(ctx, `UPDATE customer_tokens SET expires_at = now() + interval '1 day' WHERE id = $1`, a.tokenID)
	staff := &entitlements.Principal{CustomerID: a.customer.ID, Kind: entitlements.PrincipalStaff, Actor: e.maker.Email}
	renewed, err := e.portal.RenewToken(ctx, staff, a.tokenID)
	if err != nil || time.Until(*renewed.ExpiresAt) < 89*24*time.Hour {
		t.Fatalf("renewed: %v %v", renewed, err)
	}
}

// TestPasswordChangeCanRevokeTokens (issue 20): a password change ends every session
// and, when asked (the default on the form), revokes the personal access tokens.
func TestPasswordChangeCanRevokeTokens(t *testing.T) {
	e := mustServer(t)
	ctx := context.Background()
	maker, _ := e.store.StaffByEmail(ctx, "maker@m.test")
	pat, _, err := e.svc.CreateStaffToken(ctx, "laptop", 24*time.Hour, maker)
	if err != nil {
		t.Fatal(err)
	}
	whoami := func() int {
		req, _ := http.NewRequest("POST", e.ts.URL+"/v1/staff/whoami", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+pat)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := whoami(); st != 200 {
		t.Fatalf("the token before: %d", st)
	}
	c := client(t)
	e.mustLogin(t, c, "maker@m.test", password)
	token := csrfOf(t, c, e.ts.URL+"/staff/accounts")
	resp, err := c.PostForm(e.ts.URL+"/staff/accounts/password", url.Values{"_csrf": {token}, "current": {password},
		"next": {"a brand new long password"}, "revoke_tokens": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("password change: %d", resp.StatusCode)
	}
	if st := whoami(); st != http.StatusUnauthorized {
		t.Fatalf("the token after a password change with revocation: %d", st)
	}
}

// TestCustomerSearchTakesWildcardsLiterally (issue 20): % and _ in a search match
// themselves.
func TestCustomerSearchTakesWildcardsLiterally(t *testing.T) {
	e := mustServer(t)
	ctx := context.Background()
	maker, _ := e.store.StaffByEmail(ctx, "maker@m.test")
	for _, n := range []string{"100% Pure", "Plain Co", "Under_Score"} {
		if err := e.svc.CreateCustomer(ctx, &entitlements.Customer{Name: n}, maker); err != nil {
			t.Fatal(err)
		}
	}
	for q, want := range map[string]int{"%": 1, "_": 1, "100%": 1, "plain": 1} {
		list, err := e.svc.SearchCustomers(ctx, entitlements.CustomerQuery{Text: q, Sort: entitlements.Sort{Key: "name"}, Limit: 50}, maker)
		if err != nil || len(list) != want {
			t.Errorf("search %q: %d results (%v), want %d", q, len(list), err, want)
		}
	}
}
