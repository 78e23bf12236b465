package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestPortalAndAPIIsolation: customer A's portal session and API token, given customer
// B's license, lease, token and file IDs, get exactly the answer they get for IDs that
// do not exist, and nothing of B's changes (leases, lease token, API tokens,
// downloads). Every portal route and every customer-API route that takes an ID.
func TestPortalAndAPIIsolation(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme", "ops@acme.test")
	b := e.tenant(t, "Globex", "ops@globex.test")
	bLease := e.lease(t, b, "globex-host-1")
	aLease := e.lease(t, a, "acme-host-1")
	if _, err := e.svc.PublishBundle(context.Background(), "genai-smart-router", e.check); err != nil {
		t.Fatal(err)
	}
	const (
		noLic   = "lic_01HZY3QK8Y0000000000000000"
		noLease = "lea_01HZY3QK8Y0000000000000000"
		noTok   = "ctk_01HZY3QK8Y0000000000000000"
	)
	session := e.signIn(t, a.email)
	csrf := e.csrf(t, session, "/portal/")
	before := snapshotOf(t, e, b)

	type route struct {
		method, path string // path with {lic}, {lease}, {tok}
	}
	portalRoutes := []route{
		{"GET", "/portal/licenses/{lic}"},
		{"GET", "/portal/licenses/{lic}/download/file"},
		{"GET", "/portal/licenses/{lic}/download/summary"},
		{"GET", "/portal/licenses/{lic}/download/checklist"},
		{"GET", "/portal/licenses/{lic}/download/bundle"},
		{"GET", "/portal/licenses/{lic}/leases/{lease}/release"},
		{"POST", "/portal/licenses/{lic}/leases/{lease}/release"},
		{"GET", "/portal/licenses/{lic}/lease-token"},
		{"POST", "/portal/licenses/{lic}/lease-token"},
		{"GET", "/portal/tokens/{tok}/revoke"},
		{"POST", "/portal/tokens/{tok}/revoke"},
	}
	apiRoutes := []route{
		{"GET", "/v1/licenses/{lic}"},
		{"GET", "/v1/licenses/{lic}/file"},
		{"GET", "/v1/licenses/{lic}/checklist"},
	}
	fill := func(p, lic, lease, tok string) string {
		return strings.NewReplacer("{lic}", lic, "{lease}", lease, "{tok}", tok).Replace(p)
	}
	// Request IDs and the probed IDs differ by construction; everything else must not.
	norm := func(s string, ids ...string) string {
		for _, id := range ids {
			s = strings.ReplaceAll(s, id, "ID")
		}
		return regexp.MustCompile(`"request_id":"[^"]*"`).ReplaceAllString(s, `"request_id":""`)
	}
	call := func(c *http.Client, method, path, bearer string) (int, string) {
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader(url.Values{"_csrf": {csrf}}.Encode())
		}
		req, _ := http.NewRequest(method, e.ts.URL+path, body)
		req.Header.Set("Accept", "text/html")
		if method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readBody(t, resp)
	}
	type probe struct {
		name       string
		foreign    string // with B's IDs (and A's license where only the lease is foreign)
		missing    string
		ids        []string
		bearer     string
		httpClient *http.Client
		method     string
	}
	var probes []probe
	for _, r := range portalRoutes {
		probes = append(probes, probe{"portal " + r.method + " " + r.path, fill(r.path, b.pilot.ID, bLease, b.tokenID), fill(r.path, noLic, noLease, noTok),
			[]string{b.pilot.ID, bLease, b.tokenID, noLic, noLease, noTok}, "", session, r.method})
		if strings.Contains(r.path, "{lease}") {
			// A's own license, B's lease.
			probes = append(probes, probe{"portal own license, foreign lease " + r.method, fill(r.path, a.pilot.ID, bLease, ""), fill(r.path, a.pilot.ID, noLease, ""),
				[]string{bLease, noLease}, "", session, r.method})
		}
	}
	for _, r := range apiRoutes {
		for _, lic := range []string{b.router.ID, b.jws.ID} {
			probes = append(probes, probe{"api " + r.path + " " + lic[:6], fill(r.path, lic, "", ""), fill(r.path, noLic, "", ""),
				[]string{lic, noLic}, a.token, http.DefaultClient, r.method})
		}
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			fs, fb := call(p.httpClient, p.method, p.foreign, p.bearer)
			ms, mb := call(p.httpClient, p.method, p.missing, p.bearer)
			if fs != ms || norm(fb, p.ids...) != norm(mb, p.ids...) {
				t.Fatalf("foreign ID answered %d, missing ID %d:\n--- foreign\n%.600s\n--- missing\n%.600s", fs, ms, fb, mb)
			}
			if fs != 404 {
				t.Fatalf("answered %d, want 404", fs)
			}
		})
	}
	// The same routes with A's own IDs answer: the 404s above are isolation, not
	// broken routes.
	for _, r := range portalRoutes {
		if r.method == "GET" {
			if st, body := call(session, "GET", fill(r.path, a.pilot.ID, aLease, a.tokenID), ""); st != 200 {
				t.Fatalf("A's own %s: %d %.300s", r.path, st, body)
			}
		}
	}
	for _, r := range apiRoutes {
		if st, _ := call(http.DefaultClient, "GET", fill(r.path, a.router.ID, "", ""), a.token); st != 200 {
			t.Fatalf("A's own %s: %d", r.path, st)
		}
	}
	// Lists never show B's records.
	_, list := call(session, "GET", "/portal/", "")
	_, tokens := call(session, "GET", "/portal/tokens", "")
	r := e.api(t, a.token, "/v1/licenses")
	for _, id := range []string{b.router.ID, b.pilot.ID, b.jws.ID, b.tokenID} {
		if strings.Contains(list+tokens+string(r.body), id) {
			t.Fatalf("a list of A shows B's %s", id)
		}
	}
	if !strings.Contains(list, a.router.ID) || !strings.Contains(string(r.body), a.router.ID) {
		t.Fatal("A's own license is missing from its lists: the probe proves nothing")
	}
	if after := snapshotOf(t, e, b); after != before {
		t.Fatalf("B's records changed:\n%s\n%s", before, after)
	}
}

// snapshotOf renders everything of a tenant that a foreign request could change.
func snapshotOf(t *testing.T, e *portalEnv, x *tenant) string {
	t.Helper()
	var s string
	err := e.store.Pool().QueryRow(context.Background(), `SELECT
		(SELECT string_agg(lease_id || coalesce(released_at::text, '-') || freed_early::text || expires_at::text, ',' ORDER BY lease_id) FROM leases WHERE license_id = $1)
		|| '|' || (SELECT encode(token_hash, 'hex') || coalesce(rotated_at::text, '-') FROM lease_tokens WHERE license_id = $1)
		|| '|' || (SELECT string_agg(id || coalesce(revoked_at::text, '-'), ',' ORDER BY id) FROM customer_tokens WHERE customer_id = $2)
		|| '|' || (SELECT count(*) FROM downloads WHERE customer_id = $2)::text
		|| '|' || (SELECT count(*) FROM audit_events WHERE subject IN ($1, $2))::text`, x.pilot.ID, x.customer.ID).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(s)
}
