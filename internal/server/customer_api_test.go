package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/portal"
)

type summaryPage struct {
	Licenses []map[string]any `json:"licenses"`
	Next     *string          `json:"next"`
}

// TestCustomerAPIFilesAreTheStoredBytes: the file route returns the exact stored
// signed bytes, with the content type, file name and ETag of customer-api.md, for an
// envelope and a CoreSDK JWS; the checklist is Markdown; every delivery is recorded.
func TestCustomerAPIFilesAreTheStoredBytes(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme", "ops@acme.test")
	for _, c := range []struct {
		id, ctype, name string
		stored          []byte
	}{
		{a.router.ID, "application/json", "license.json", a.router.File},
		{a.jws.ID, "application/jose", "license.jwk", a.jws.File},
	} {
		r := e.api(t, a.token, "/v1/licenses/"+c.id+"/file")
		sum := sha256.Sum256(c.stored)
		if r.status != 200 || !bytes.Equal(r.body, c.stored) {
			t.Fatalf("%s: %d, bytes equal to the stored ones: %v", c.id, r.status, bytes.Equal(r.body, c.stored))
		}
		if got := r.header.Get("Content-Type"); got != c.ctype {
			t.Errorf("%s: Content-Type %q, want %q", c.id, got, c.ctype)
		}
		if got := r.header.Get("Content-Disposition"); got != `attachment; filename="`+c.name+`"` {
			t.Errorf("%s: Content-Disposition %q", c.id, got)
		}
		etag := `"` + hex.EncodeToString(sum[:]) + `"`
		if got := r.header.Get("ETag"); got != etag {
			t.Errorf("%s: ETag %q, want %q", c.id, got, etag)
		}
		if r := e.api(t, a.token, "/v1/licenses/"+c.id+"/file", "If-None-Match", etag); r.status != http.StatusNotModified || len(r.body) != 0 {
			t.Errorf("%s: If-None-Match: %d", c.id, r.status)
		}
	}
	r := e.api(t, a.token, "/v1/licenses/"+a.router.ID+"/checklist")
	if r.status != 200 || r.header.Get("Content-Type") != "text/markdown" || !strings.HasPrefix(string(r.body), "# Operator checklist: "+a.router.ID) {
		t.Fatalf("checklist: %d %s %.100s", r.status, r.header.Get("Content-Type"), r.body)
	}
	// The file verifies offline as delivered.
	res := e.verifyBytes(t, e.api(t, a.token, "/v1/licenses/"+a.router.ID+"/file").body, "genai-smart-router")
	if res.Status != "valid" {
		t.Fatalf("delivered file: %s %s", res.Status, res.Reason)
	}
	// Deliveries recorded: 2 files + 1 checklist + 1 file (the 304s deliver nothing).
	var n int
	e.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM downloads WHERE customer_id = $1 AND actor_kind = 'customer_token' AND actor = $2 AND client_addr = '127.0.0.1'`,
		a.customer.ID, a.tokenID).Scan(&n)
	if n != 4 {
		t.Fatalf("%d downloads recorded, want 4", n)
	}
}

// TestCustomerAPISummaryAndPaging: the summary has exactly the spec's members; the
// list is newest first, 100 a page, with a cursor, and only the token's customer's.
func TestCustomerAPISummaryAndPaging(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme", "ops@acme.test")
	b := e.tenant(t, "Globex", "ops@globex.test")
	r := e.api(t, a.token, "/v1/licenses/"+a.pilot.ID)
	var one map[string]any
	if r.status != 200 || json.Unmarshal(r.body, &one) != nil {
		t.Fatalf("summary: %d %s", r.status, r.body)
	}
	want := []string{"license_id", "product", "sku", "status", "customer_id", "key_id", "issued_at", "not_before", "expires_at",
		"features", "limits", "supersedes", "superseded_by", "superseded_effective_at", "lease_required", "file_sha256"}
	var got []string
	for k := range one {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("summary members %v, want %v", got, want)
	}
	sum := sha256.Sum256(a.pilot.File)
	if one["status"] != "active" || one["lease_required"] != true || one["supersedes"] != nil || one["file_sha256"] != hex.EncodeToString(sum[:]) ||
		one["customer_id"] != a.customer.ID {
		t.Fatalf("summary: %s", r.body)
	}
	for _, bad := range []string{"payload", "signature", `"d"`, "-----BEGIN"} {
		if bytes.Contains(r.body, []byte(bad)) {
			t.Fatalf("summary carries %s: %s", bad, r.body)
		}
	}
	// 102 more licenses for A: 105 in all, so two pages.
	for range 102 {
		e.issue(t, a.customer.ID, "enterprise-annual")
	}
	var p1, p2 summaryPage
	r = e.api(t, a.token, "/v1/licenses")
	if r.status != 200 || json.Unmarshal(r.body, &p1) != nil || len(p1.Licenses) != portal.PageSize || p1.Next == nil {
		t.Fatalf("page 1: %d, %d licenses, next %v", r.status, len(p1.Licenses), p1.Next)
	}
	r = e.api(t, a.token, "/v1/licenses?after="+*p1.Next)
	if r.status != 200 || json.Unmarshal(r.body, &p2) != nil || len(p2.Licenses) != 5 || p2.Next != nil || !bytes.Contains(r.body, []byte(`"next":null`)) {
		t.Fatalf("page 2: %d, %d licenses, next %v", r.status, len(p2.Licenses), p2.Next)
	}
	seen := map[string]bool{}
	last := "9999"
	for _, l := range append(p1.Licenses, p2.Licenses...) {
		id, at := l["license_id"].(string), l["issued_at"].(string)
		if seen[id] || l["customer_id"] != a.customer.ID || at > last {
			t.Fatalf("paging: repeated, foreign or out of order: %v", l)
		}
		seen[id], last = true, at
	}
	if seen[b.router.ID] || len(seen) != 105 {
		t.Fatalf("%d licenses seen (B's included: %v)", len(seen), seen[b.router.ID])
	}
	wantProblem(t, e.api(t, a.token, "/v1/licenses?after=garbage"), 400, "invalid")
}

// TestCustomerAPIAuth: one 401 for a missing, unknown, expired or revoked token; a
// revoked token stops at once; a token in the URL is refused; over the rate, 429.
func TestCustomerAPIAuth(t *testing.T) {
	e := mustPortal(t, 0.001, 3)
	a := e.tenant(t, "Acme", "ops@acme.test")
	path := "/v1/licenses/" + a.router.ID
	if r := e.api(t, a.token, path); r.status != 200 {
		t.Fatalf("good token: %d", r.status)
	}
	expiring, rec, err := e.portal.StaffCreateToken(context.Background(), a.customer.ID, "expiring", 0, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	e.store.Pool().Exec(context.Background(), `UPDATE customer_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, rec.ID)
	details := map[string]string{}
	for name, tok := range map[string]string{"missing": "", "unknown": "mct_" + strings.Repeat("A", 43), "malformed": "nope", "expired": expiring} {
		details[name] = wantProblem(t, e.api(t, tok, path), 401, "unauthorized").Detail
	}
	for name, d := range details {
		if d != details["missing"] {
			t.Fatalf("401 answers differ: %s says %q, missing says %q", name, d, details["missing"])
		}
	}
	wantProblem(t, e.api(t, a.token, path+"?access_token="+a.token), 400, "invalid")
	wantProblem(t, e.api(t, "", path+"?token="+a.token), 400, "invalid")
	// Over the rate (burst 3: one used above, the ?access_token one was refused before it).
	e.api(t, a.token, path)
	e.api(t, a.token, path)
	r := e.api(t, a.token, path)
	wantProblem(t, r, 429, "rate-limited")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Revoked: refused at once (the next request), with the same 401.
	if err := e.portal.StaffRevokeToken(context.Background(), a.customer.ID, a.tokenID, e.maker); err != nil {
		t.Fatal(err)
	}
	if p := wantProblem(t, e.api(t, a.token, path), 401, "unauthorized"); p.Detail != details["missing"] {
		t.Fatalf("revoked token answer differs: %q", p.Detail)
	}
}
