package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/staffapi"
	"github.com/metrum/licensing/internal/staffclient"
)

// staffTokens makes a staff account of each role with a personal access token.
func (e *portalEnv) staffTokens(t *testing.T) map[entitlements.Role]string {
	t.Helper()
	ctx := context.Background()
	out := map[entitlements.Role]string{}
	for _, r := range []entitlements.Role{entitlements.RoleViewer, entitlements.RoleIssuer, entitlements.RoleApprover, entitlements.RoleAdmin} {
		st := &entitlements.Staff{Email: string(r) + "@staff.test", Role: r}
		if err := e.store.CreateStaff(ctx, st, "a long enough password", "test"); err != nil {
			t.Fatal(err)
		}
		tok, _, err := e.store.CreateStaffToken(ctx, st.ID, "test", time.Now().Add(time.Hour), "test")
		if err != nil {
			t.Fatal(err)
		}
		out[r] = tok
	}
	return out
}

func (e *portalEnv) staffCall(t *testing.T, token, path string, body any) leaseResp {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", e.ts.URL+staffapi.Prefix+path, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

// changes is a fingerprint of everything a refused action must not touch.
func (e *portalEnv) changes(t *testing.T) string {
	t.Helper()
	var s string
	err := e.store.Pool().QueryRow(context.Background(), `SELECT concat_ws(',',
		(SELECT count(*) FROM customers), (SELECT count(*) FROM entitlements), (SELECT string_agg(id || state, '' ORDER BY id) FROM entitlements),
		(SELECT count(*) FROM licenses), (SELECT string_agg(id || status, '' ORDER BY id) FROM licenses), (SELECT count(*) FROM signing_keys),
		(SELECT string_agg(kid || status || coalesce(not_after::text, ''), '' ORDER BY kid) FROM signing_keys), (SELECT count(*) FROM active_keys),
		(SELECT count(*) FROM staff_users), (SELECT count(*) FROM revocation_bundles), (SELECT string_agg(encode(token_hash, 'hex'), '') FROM lease_tokens),
		(SELECT count(*) FROM portal_users), (SELECT count(*) FROM customer_tokens), (SELECT count(*) FROM audit_events))`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStaffAPIRoles: a token of each role is refused (403, nothing changed) every
// action above its level, whatever it sends.
func TestStaffAPIRoles(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme", "ops@acme.test")
	tokens := e.staffTokens(t)
	ctx := context.Background()
	draft, err := e.svc.CreateEntitlement(ctx, issuanceInput(a.customer.ID), e.maker)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := e.store.ListKeys(ctx)
	kid := keys[0].KID
	type action struct {
		path string
		body any
		min  entitlements.Role
	}
	actions := []action{
		{staffapi.CustomerCreate, map[string]any{"Name": "New Co"}, entitlements.RoleIssuer},
		{staffapi.CustomerUpdate, staffapi.CustomerUpdateRequest{ID: a.customer.ID, Name: "Renamed"}, entitlements.RoleIssuer},
		{staffapi.EntitlementCreate, map[string]any{"CustomerID": a.customer.ID, "Template": "enterprise-annual"}, entitlements.RoleIssuer},
		{staffapi.EntitlementCancel, staffapi.Reason{ID: draft.ID, Reason: "x"}, entitlements.RoleIssuer},
		{staffapi.EntitlementApprove, staffapi.ID{ID: draft.ID}, entitlements.RoleApprover},
		{staffapi.EntitlementReject, staffapi.Reason{ID: draft.ID, Reason: "x"}, entitlements.RoleApprover},
		{staffapi.LicenseIssue, staffapi.ID{ID: draft.ID}, entitlements.RoleIssuer},
		{staffapi.LicenseIssueAll, staffapi.IssueAllRequest{}, entitlements.RoleIssuer},
		{staffapi.LicenseSuccessor, map[string]any{"Kind": "renewal", "LicenseID": a.router.ID}, entitlements.RoleIssuer},
		{staffapi.LicenseRenewAll, staffapi.RenewAllRequest{Within: 10000 * time.Hour}, entitlements.RoleIssuer},
		{staffapi.LicenseStatus, staffapi.StatusRequest{LicenseID: a.router.ID, Action: "revoke", Reason: "x"}, entitlements.RoleApprover},
		{staffapi.LicenseLeaseToken, staffapi.ID{ID: a.pilot.ID}, entitlements.RoleIssuer},
		{staffapi.BundlePublish, staffapi.BundleRequest{Product: "genai-smart-router"}, entitlements.RoleApprover},
		{staffapi.KeyGenerate, map[string]any{"Input": map[string]any{"Product": "genai-smart-router", "Alg": "EdDSA", "Purposes": []string{"license"}}}, entitlements.RoleAdmin},
		{staffapi.KeyRotate, staffapi.KeyRotateRequest{Product: "genai-smart-router", Purpose: "license"}, entitlements.RoleAdmin},
		{staffapi.KeyActivate, staffapi.ID{ID: kid}, entitlements.RoleAdmin},
		{staffapi.KeyRetire, staffapi.Reason{ID: kid, Reason: "x"}, entitlements.RoleAdmin},
		{staffapi.KeyNotAfter, staffapi.KeyNotAfterRequest{KID: kid, At: time.Now()}, entitlements.RoleAdmin},
		{staffapi.StaffCreate, staffapi.StaffCreateRequest{Email: "new@staff.test", Role: "admin", Password: "a long enough password"}, entitlements.RoleAdmin},
		{staffapi.PortalInvite, staffapi.PortalInviteRequest{CustomerID: a.customer.ID, Email: "x@acme.test"}, entitlements.RoleIssuer},
		{staffapi.PortalDisable, staffapi.PortalUserRequest{CustomerID: a.customer.ID, ID: 1, Disabled: true}, entitlements.RoleIssuer},
		{staffapi.CustomerTokenNew, staffapi.CustomerTokenRequest{CustomerID: a.customer.ID, Name: "x"}, entitlements.RoleIssuer},
		{staffapi.CustomerTokenDrop, staffapi.CustomerTokenRequest{CustomerID: a.customer.ID, ID: a.tokenID}, entitlements.RoleIssuer},
		{staffapi.OrderReview, staffapi.ReviewRequest{ID: "ord_01HZY3QK8Y0000000000000000", Note: "x"}, entitlements.RoleApprover},
	}
	order := []entitlements.Role{entitlements.RoleViewer, entitlements.RoleIssuer, entitlements.RoleApprover, entitlements.RoleAdmin}
	for _, act := range actions {
		for _, r := range order {
			if r.AtLeast(act.min) {
				break
			}
			t.Run(act.path+" as "+string(r), func(t *testing.T) {
				before := e.changes(t)
				res := e.staffCall(t, tokens[r], act.path, act.body)
				wantProblem(t, res, 403, "forbidden")
				if after := e.changes(t); after != before {
					t.Fatalf("a refused %s changed something", act.path)
				}
			})
		}
	}
	// Reads are every staff member's.
	for _, p := range []string{staffapi.CustomerList, staffapi.LicenseList, staffapi.KeyList, staffapi.AuditList, staffapi.EntitlementList} {
		body := any(staffapi.Empty{})
		switch p {
		case staffapi.CustomerList:
			body = staffapi.Page{}
		case staffapi.LicenseList, staffapi.EntitlementList, staffapi.AuditList:
			body = map[string]any{}
		}
		if r := e.staffCall(t, tokens[entitlements.RoleViewer], p, body); r.status != 200 {
			t.Fatalf("viewer reading %s: %d %s", p, r.status, r.body)
		}
	}
}

// TestStaffAPIMakerChecker: the creator's token can't approve its own entitlement;
// another approver's can.
func TestStaffAPIMakerChecker(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme", "ops@acme.test")
	tokens := e.staffTokens(t)
	c := staffclient.New(e.ts.URL, tokens[entitlements.RoleApprover])
	var ent entitlements.Entitlement
	if err := c.Do(context.Background(), staffapi.EntitlementCreate, map[string]any{"CustomerID": a.customer.ID, "Template": "enterprise-annual"}, &ent); err != nil {
		t.Fatal(err)
	}
	err := c.Do(context.Background(), staffapi.EntitlementApprove, staffapi.ID{ID: ent.ID}, nil)
	if entitlements.ErrorCode(err) != entitlements.EFORBIDDEN || !strings.Contains(entitlements.ErrorMessage(err), "maker-checker") {
		t.Fatalf("the creator approved its own entitlement: %v", err)
	}
	if got, _ := e.store.GetEntitlement(context.Background(), ent.ID); got.State != entitlements.StateDraft {
		t.Fatalf("state after the refused approval: %s", got.State)
	}
	if err := staffclient.New(e.ts.URL, tokens[entitlements.RoleAdmin]).Do(context.Background(), staffapi.EntitlementApprove, staffapi.ID{ID: ent.ID}, nil); err != nil {
		t.Fatalf("another approver: %v", err)
	}
}

// TestStaffAPITokens: a revoked or expired token is refused at once; a token in the
// query string is refused; a cookie is no credential; one 401 for every bad token.
func TestStaffAPITokens(t *testing.T) {
	e := mustPortal(t, 0, 0)
	tokens := e.staffTokens(t)
	ctx := context.Background()
	tok := tokens[entitlements.RoleIssuer]
	if r := e.staffCall(t, tok, staffapi.WhoAmI, staffapi.Empty{}); r.status != 200 || !strings.Contains(string(r.body), "issuer@staff.test") {
		t.Fatalf("whoami: %d %s", r.status, r.body)
	}
	// In the URL: refused even with a good header.
	req, _ := http.NewRequest("POST", e.ts.URL+staffapi.Prefix+staffapi.WhoAmI+"?access_token="+tok, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	wantProblem(t, do(t, req), 400, "invalid")
	req, _ = http.NewRequest("POST", e.ts.URL+staffapi.Prefix+staffapi.WhoAmI, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(&http.Cookie{Name: "issuer_session", Value: tok})
	p401 := wantProblem(t, do(t, req), 401, "unauthorized")
	// Revoked: at once.
	var list []map[string]any
	c := staffclient.New(e.ts.URL, tok)
	if err := c.Do(ctx, staffapi.TokenList, staffapi.Empty{}, &list); err != nil || len(list) != 1 {
		t.Fatalf("token list: %v %v", err, list)
	}
	if err := c.Do(ctx, staffapi.TokenRevoke, staffapi.ID{ID: list[0]["ID"].(string)}, nil); err != nil {
		t.Fatal(err)
	}
	if p := wantProblem(t, e.staffCall(t, tok, staffapi.WhoAmI, staffapi.Empty{}), 401, "unauthorized"); p.Detail != p401.Detail {
		t.Fatalf("revoked token answer differs: %q", p.Detail)
	}
	// Expired: at once.
	old := tokens[entitlements.RoleViewer]
	e.store.Pool().Exec(ctx, `UPDATE staff_tokens SET expires_at = now() - interval '1 second' WHERE staff_id = (SELECT id FROM staff_users WHERE email = 'viewer@staff.test')`)
	if p := wantProblem(t, e.staffCall(t, old, staffapi.WhoAmI, staffapi.Empty{}), 401, "unauthorized"); p.Detail != p401.Detail {
		t.Fatalf("expired token answer differs: %q", p.Detail)
	}
	// A disabled account's token stops too.
	adm := tokens[entitlements.RoleAdmin]
	e.store.Pool().Exec(ctx, `UPDATE staff_users SET disabled_at = now() WHERE email = 'admin@staff.test'`)
	wantProblem(t, e.staffCall(t, adm, staffapi.WhoAmI, staffapi.Empty{}), 401, "unauthorized")
	// Login: a wrong password is 401 and audited; the right one gives a working token.
	wantProblem(t, e.staffCall(t, "", staffapi.Login, staffapi.LoginRequest{Email: "approver@staff.test", Password: "wrong password!!"}), 401, "unauthorized")
	var nt staffapi.NewToken
	if err := staffclient.New(e.ts.URL, "").Do(ctx, staffapi.Login, staffapi.LoginRequest{Email: "approver@staff.test", Password: "a long enough password"}, &nt); err != nil {
		t.Fatal(err)
	}
	if r := e.staffCall(t, nt.Token, staffapi.WhoAmI, staffapi.Empty{}); r.status != 200 {
		t.Fatalf("login token: %d", r.status)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_events WHERE action = 'staff.sign_in_failed' AND subject = 'approver@staff.test'`); n != 1 {
		t.Fatalf("%d failed sign-ins audited", n)
	}
}

func issuanceInput(customerID string) entitlements.EntitlementInput {
	return entitlements.EntitlementInput{CustomerID: customerID, Template: "enterprise-annual"}
}

// TestStaffAPIStrictBodies: a body that is not exactly one JSON object of the call's
// members (trailing data, a duplicate or unknown member, a wrong Content-Type) is
// refused with 400 and changes nothing; the same body sent well creates the customer.
func TestStaffAPIStrictBodies(t *testing.T) {
	e := mustPortal(t, 0, 0)
	tok := e.staffTokens(t)[entitlements.RoleIssuer]
	post := func(body, contentType string) leaseResp {
		t.Helper()
		req, _ := http.NewRequest("POST", e.ts.URL+staffapi.Prefix+staffapi.CustomerCreate, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+tok)
		return do(t, req)
	}
	before := e.changes(t)
	for _, bad := range []struct{ body, contentType string }{
		{`{"Name":"Globex"} {"Name":"Initech"}`, "application/json"},
		{`{"Name":"Globex"}x`, "application/json"},
		{`{"Name":"Globex","Name":"Initech"}`, "application/json"},
		{`{"Name":"Globex","Admin":true}`, "application/json"},
		{`{"name":"Globex"}`, "application/json"},
		{`{"Name":"Globex"}`, "text/plain"},
	} {
		wantProblem(t, post(bad.body, bad.contentType), 400, "invalid")
	}
	if after := e.changes(t); after != before {
		t.Fatalf("a refused body changed something:\n%s\n%s", before, after)
	}
	if r := post(`{"Name":"Globex"}`, "application/json; charset=utf-8"); r.status != 200 || !strings.Contains(string(r.body), "Globex") {
		t.Fatalf("a good body: %d %s", r.status, r.body)
	}
}
