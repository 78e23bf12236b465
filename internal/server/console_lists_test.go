package server_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/metrum/licensing/internal/browsertest"
	"github.com/metrum/licensing/internal/entitlements"
)

// rows are the data-* IDs of a list's rows, in order.
func (b *staffBrowser) rows(table, attr string) []string {
	b.t.Helper()
	ids, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll(`+jsString("#"+table+" tbody tr")+`)].map(r => r.getAttribute(`+jsString(attr)+`))`))
	if err != nil {
		b.t.Fatal(err)
	}
	return ids
}

// column is the text of a list's n-th cell of every row (first lines only).
func (b *staffBrowser) column(table string, n int) []string {
	b.t.Helper()
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](fmt.Sprintf(`[...document.querySelectorAll("#%s tbody tr")].map(r => r.cells[%d].innerText.split("\n")[0])`, table, n)))
	if err != nil {
		b.t.Fatal(err)
	}
	return got
}

// issueWithContract makes, approves and issues a license with a contract reference.
func (e *portalEnv) issueWithContract(t *testing.T, customerID, tmpl, contract string) *entitlements.License {
	t.Helper()
	ctx := context.Background()
	ent, err := e.svc.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: customerID, Template: tmpl, ContractRef: contract}, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, ent.ID, e.check); err != nil {
		t.Fatal(err)
	}
	l, err := e.svc.Issue(ctx, ent.ID, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestBrowserListsSearchSortPageAndExport: the license list finds licenses by
// customer name, contract reference, entitlement ID and license ID; sorts by a
// column both ways; pages (every license once, the search kept); and downloads the
// search as CSV (RFC 4180, formula cells defused). The customer and entitlement
// lists search by contract reference and IDs, sort and page too.
func TestBrowserListsSearchSortPageAndExport(t *testing.T) {
	e := mustPortal(t, 0, 0)
	ctx := context.Background()
	e.staffAccounts(t, map[string]entitlements.Role{"viewer@staff.test": entitlements.RoleViewer})
	mk := func(name string) *entitlements.Customer {
		c := &entitlements.Customer{Name: name}
		if err := e.svc.CreateCustomer(ctx, c, e.maker); err != nil {
			t.Fatal(err)
		}
		return c
	}
	acme, globex, evil := mk("Acme Corp"), mk("Globex Corporation"), mk(`=HYPERLINK("http://evil.test","click"), Inc`)
	acmeAnnual := e.issueWithContract(t, acme.ID, "enterprise-annual", "PO-ACME-7")
	acmePilot := e.issueWithContract(t, acme.ID, "pilot-30d", "")
	globexTeam := e.issueWithContract(t, globex.ID, "team", "GX-2026/15")
	evilLic := e.issueWithContract(t, evil.ID, "enterprise-annual", "+1-555")
	bulk := mk("Bulk Buyer")
	for i := range 52 {
		e.issueWithContract(t, bulk.ID, "free", fmt.Sprintf("BULK-%02d", i))
	}
	for i := range 50 {
		mk(fmt.Sprintf("Zeta %02d", i))
	}
	total := 4 + 52

	b := e.staffBrowser(t, "viewer@staff.test")
	list := func(query string) {
		b.t.Helper()
		b.do("licenses?"+query, chromedp.Navigate(e.ts.URL+"/staff/licenses?"+query), chromedp.WaitVisible(chromedp.ID("filter")))
	}
	// By customer name (any case, part of it), by contract reference, by entitlement ID.
	list("q=ACME")
	if got := b.rows("licenses", "data-license-id"); !sameIDs(got, acmeAnnual.ID, acmePilot.ID) {
		t.Fatalf("search acme: %v", got)
	}
	b.has("#licenses", "Acme Corp", "PO-ACME-7")
	b.shots("console-licenses-search")
	list("q=po-acme")
	if got := b.rows("licenses", "data-license-id"); !sameIDs(got, acmeAnnual.ID) {
		t.Fatalf("search by contract: %v", got)
	}
	list("q=GX-2026%2F15")
	if got := b.rows("licenses", "data-license-id"); !sameIDs(got, globexTeam.ID) {
		t.Fatalf("search by contract with a slash: %v", got)
	}
	list("q=" + globexTeam.EntitlementID)
	if got := b.rows("licenses", "data-license-id"); !sameIDs(got, globexTeam.ID) {
		t.Fatalf("search by entitlement ID: %v", got)
	}
	list("q=%25") // % is text, not a wildcard
	b.has("#empty", "No license matches this search", "Clear the search")
	b.shots("console-licenses-empty")
	b.do("by license ID", chromedp.Navigate(e.ts.URL+"/staff/licenses?q="+evilLic.ID), chromedp.WaitVisible(chromedp.ID("license-id")))
	if b.text("#license-id") != evilLic.ID {
		t.Fatalf("search by license ID opened %s", b.text("#license-id"))
	}

	// Sorted by customer, both ways, by the column headers.
	list("")
	b.do("sort by customer", chromedp.Click(chromedp.ID("sort-customer")), chromedp.WaitVisible(chromedp.ID("licenses")))
	if !strings.Contains(b.url(), "sort=customer") {
		t.Fatalf("sort link: %s", b.url())
	}
	up := b.column("licenses", 1)
	if !slices.IsSortedFunc(up, func(a, c string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(c)) }) {
		t.Fatalf("not sorted by customer: %v", up)
	}
	b.do("sort the other way", chromedp.Click(chromedp.ID("sort-customer")), chromedp.WaitVisible(chromedp.ID("licenses")))
	down := b.column("licenses", 1)
	if !strings.Contains(b.url(), "sort=-customer") || !slices.IsSortedFunc(down, func(a, c string) int { return strings.Compare(strings.ToLower(c), strings.ToLower(a)) }) {
		t.Fatalf("not sorted by customer the other way (%s): %v", b.url(), down)
	}
	if aria := b.attr(`th[aria-sort="descending"] a`, "id"); aria != "sort-customer" {
		t.Fatalf("aria-sort marks %q", aria)
	}

	// Pages: every license once, in order, the sort kept; a first-page link back.
	seen := map[string]bool{}
	pages := 0
	list("sort=expires")
	for {
		pages++
		for _, id := range b.rows("licenses", "data-license-id") {
			if seen[id] {
				t.Fatalf("page %d repeats %s", pages, id)
			}
			seen[id] = true
		}
		if b.count("#next-page") == 0 {
			break
		}
		b.do("next page", chromedp.Click(chromedp.ID("next-page")), chromedp.WaitVisible(chromedp.ID("first-page")))
		if !strings.Contains(b.url(), "sort=expires") {
			t.Fatalf("the next page lost the sort: %s", b.url())
		}
	}
	if pages != 2 || len(seen) != total {
		t.Fatalf("%d pages showed %d licenses, want 2 and %d", pages, len(seen), total)
	}
	b.shots("console-licenses-page-2")
	list("q=bulk&sort=-issued")
	b.has("#shown", "50 licenses")
	b.do("next page of a search", chromedp.Click(chromedp.ID("next-page")), chromedp.WaitVisible(chromedp.ID("first-page")))
	if got := b.rows("licenses", "data-license-id"); len(got) != 2 || !strings.Contains(b.url(), "q=bulk") {
		t.Fatalf("the search's second page (%s): %v", b.url(), got)
	}

	// CSV of the search: every page, only what the search finds; cells defused.
	list("q=acme&status=active&sort=sku")
	href := b.attr("#export-csv", "href")
	if !strings.Contains(href, "q=acme") || !strings.Contains(href, "status=active") {
		t.Fatalf("the CSV link drops the search: %s", href)
	}
	st, body := browsertest.Fetch(t, b.ctx, href)
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if st != 200 || err != nil || len(recs) != 3 || !strings.Contains(body, "\r\n") {
		t.Fatalf("CSV of acme: %d %v\n%s", st, err, body)
	}
	if recs[0][0] != "license_id" || recs[0][1] != "customer_name" || recs[1][0] != acmeAnnual.ID || recs[2][0] != acmePilot.ID ||
		recs[1][3] != "PO-ACME-7" || recs[1][8] != "active" {
		t.Fatalf("CSV rows: %q", recs)
	}
	_, body = browsertest.Fetch(t, b.ctx, "/staff/licenses.csv?q=HYPERLINK")
	recs, _ = csv.NewReader(strings.NewReader(body)).ReadAll()
	if len(recs) != 2 || recs[1][1] != `'=HYPERLINK("http://evil.test","click"), Inc` || recs[1][3] != "'+1-555" {
		t.Fatalf("formula cells: %q", recs)
	}
	if _, body = browsertest.Fetch(t, b.ctx, "/staff/licenses.csv?q=bulk"); strings.Count(body, "\r\n") != 53 {
		t.Fatalf("the CSV of 52 licenses has %d lines", strings.Count(body, "\r\n"))
	}
	if st, _ := browsertest.Fetch(t, b.ctx, "/staff/licenses.csv?sort=nope"); st != 400 {
		t.Fatalf("a CSV with a bad sort: %d", st)
	}

	// Customers: by contract reference, by a license's ID, sorted, paged.
	customers := func(query string) {
		b.t.Helper()
		b.do("customers?"+query, chromedp.Navigate(e.ts.URL+"/staff/customers?"+query), chromedp.WaitVisible(chromedp.ID("search")))
	}
	customers("q=po-acme-7")
	if got := b.rows("customers", "data-customer-id"); !sameIDs(got, acme.ID) {
		t.Fatalf("customers by contract: %v", got)
	}
	customers("q=" + globexTeam.ID)
	if got := b.rows("customers", "data-customer-id"); !sameIDs(got, globex.ID) {
		t.Fatalf("customers by license ID: %v", got)
	}
	customers("q=" + acmePilot.EntitlementID)
	if got := b.rows("customers", "data-customer-id"); !sameIDs(got, acme.ID) {
		t.Fatalf("customers by entitlement ID: %v", got)
	}
	customers("sort=-name")
	if first := b.column("customers", 0)[0]; first != "Zeta 49" {
		t.Fatalf("customers by name descending start with %q", first)
	}
	b.has("#shown", "50 customers")
	b.do("customers page 2", chromedp.Click(chromedp.ID("next-page")), chromedp.WaitVisible(chromedp.ID("first-page")))
	if got := b.column("customers", 0); len(got) != 54-50 || got[len(got)-1] != "=HYPERLINK(\"http://evil.test\",\"click\"), Inc" {
		t.Fatalf("customers page 2: %v", got)
	}
	b.shots("console-customers")

	// Entitlements: by customer name, with names where people expect them.
	b.do("entitlements", chromedp.Navigate(e.ts.URL+"/staff/entitlements?state=all&q=globex"), chromedp.WaitVisible(chromedp.ID("entitlements")))
	if got := b.rows("entitlements", "data-entitlement-id"); !sameIDs(got, globexTeam.EntitlementID) {
		t.Fatalf("entitlements of globex: %v", got)
	}
	b.has("#entitlements", "Globex Corporation", "GX-2026/15")
	b.do("entitlements sorted", chromedp.Navigate(e.ts.URL+"/staff/entitlements?state=all&sort=customer"), chromedp.WaitVisible(chromedp.ID("next-page")))
	if first := b.column("entitlements", 1)[0]; first != "=HYPERLINK(\"http://evil.test\",\"click\"), Inc" {
		t.Fatalf("entitlements by customer start with %q", first)
	}
	b.shots("console-entitlements-all")
}

// attr is an attribute of the first element sel matches.
func (b *staffBrowser) attr(sel, name string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(document.querySelector(`+jsString(sel)+`) || {getAttribute: () => ""}).getAttribute(`+jsString(name)+`) || ""`))
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

func sameIDs(got []string, want ...string) bool {
	return len(got) == len(want) && !slices.ContainsFunc(want, func(w string) bool { return !slices.Contains(got, w) })
}
