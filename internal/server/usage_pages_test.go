package server_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/metering"
	"github.com/metrum/licensing/usage"
)

// portalUpload posts a file to a license's upload form as the signed-in client.
func (e *portalEnv) portalUpload(t *testing.T, c *http.Client, licenseID string, file []byte) (int, string) {
	t.Helper()
	csrf := e.csrf(t, c, "/portal/")
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	w.WriteField("_csrf", csrf)
	fw, _ := w.CreateFormFile("file", "usage.json")
	fw.Write(file)
	w.Close()
	req, _ := http.NewRequest("POST", e.ts.URL+"/portal/licenses/"+licenseID+"/usage/upload", &b)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusSeeOther { // POST-redirect-GET: the page with its flash
		resp.Body.Close()
		return get(t, c, e.ts.URL+resp.Header.Get("Location"))
	}
	return resp.StatusCode, readBody(t, resp)
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readBody(t, resp)
}

// TestUsagePagesAndRoles: every read goes through the service's checks. A viewer
// reads a license's usage, its CSV and the list; a customer's portal user reads only
// the customer's licenses (another customer's is a not-found like a missing one) and
// uploads only for them; staff on a customer's behalf don't upload; without staff,
// nothing is read. With purchase on, the usage page offers a credit pack at 80 %.
func TestUsagePagesAndRoles(t *testing.T) {
	e := mustShop(t, false)
	ctx := context.Background()
	a := e.tenant(t, "Acme Corp", "ops@acme.test")
	b := e.tenant(t, "Globex", "ops@globex.test")
	lic := e.issueWith(t, a.customer.ID, "enterprise-annual", map[string]int64{"token_budget": 1000})
	h := newTestHost(t, lic, time.Now().Add(-20*time.Hour))

	// The service refuses a read without staff and uploads by staff.
	if _, err := e.usage.LicenseUsage(ctx, lic.ID, 0, nil); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
		t.Fatalf("no staff: %v", err)
	}
	if err := e.usage.DailyCSV(ctx, io.Discard, lic.ID, time.Now(), time.Now(), nil); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
		t.Fatalf("CSV without staff: %v", err)
	}
	if _, err := e.usage.Upload(ctx, &entitlements.Principal{CustomerID: a.customer.ID, Kind: entitlements.PrincipalStaff, Actor: "x"}, h.next(1)); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
		t.Fatalf("staff upload: %v", err)
	}

	// The customer uploads in the portal: below 80 % no offer.
	acme := e.signIn(t, "ops@acme.test")
	if st, page := e.portalUpload(t, acme, lic.ID, usage.MarshalBatch(append([][]byte{h.sent[1]}, h.nextN(4, 100)...))); st != http.StatusOK ||
		!strings.Contains(page, "Uploaded: 5 reports accepted.") {
		t.Fatalf("upload: %d %.400s", st, page)
	}
	st, page := get(t, acme, e.ts.URL+"/portal/licenses/"+lic.ID+"/usage")
	if st != 200 || strings.Contains(page, `id="buy-credit-pack"`) || strings.Contains(page, `id="contact-sales"`) || !strings.Contains(page, `id="usage-used">401</strong> of`) {
		i := strings.Index(page, `id="usage-budget"`)
		t.Fatalf("usage page below 80 %%: %d %.900s", st, page[max(i, 0):])
	}
	// Past 80 %: the credit pack the catalogue sells for it.
	e.portalUpload(t, acme, lic.ID, usage.MarshalBatch(h.nextN(4, 100)))
	_, page = get(t, acme, e.ts.URL+"/portal/licenses/"+lic.ID+"/usage")
	contains(t, page, `id="buy-credit-pack" href="/portal/buy?kind=top-up&amp;license=`+lic.ID+`"`)

	// Globex's user: Acme's license is not found, the same page as a missing one.
	globex := e.signIn(t, "ops@globex.test")
	st1, foreign := get(t, globex, e.ts.URL+"/portal/licenses/"+lic.ID+"/usage")
	st2, missing := get(t, globex, e.ts.URL+"/portal/licenses/lic_01HZY3QK8Y0000000000000009/usage")
	rid := regexp.MustCompile(`"request_id":"[^"]*"`)
	foreign, missing = rid.ReplaceAllString(strings.ReplaceAll(foreign, lic.ID, "X"), ""), rid.ReplaceAllString(strings.ReplaceAll(missing, "lic_01HZY3QK8Y0000000000000009", "X"), "")
	if st1 != 404 || st2 != 404 || foreign != missing {
		t.Fatalf("foreign %d, missing %d; pages differ:\n%.300s\n%.300s", st1, st2, foreign, missing)
	}
	rows := e.usageRows(t)
	if st, _ := e.portalUpload(t, globex, lic.ID, h.next(1)); st != 404 {
		t.Fatalf("upload to a foreign license's page: %d", st)
	}
	if st, page := e.portalUpload(t, globex, b.router.ID, h.sent[h.seq]); st != 422 || !strings.Contains(page, "not one this credential may report for") {
		t.Fatalf("Acme's reports in Globex's upload: %d %.300s", st, page)
	}
	if after := e.usageRows(t); after["usage_reports"] != rows["usage_reports"] || after["usage_chains"] != rows["usage_chains"] {
		t.Fatal("a refused upload left rows")
	}
	// The customer API token reads nothing of another customer either.
	if _, err := e.usage.CustomerUsage(ctx, &entitlements.Principal{CustomerID: b.customer.ID, Kind: entitlements.PrincipalCustomerToken}, lic.ID, 0); entitlements.ErrorCode(err) != entitlements.ENOTFOUND {
		t.Fatalf("customer token, foreign license: %v", err)
	}

	// A viewer reads the usage page, the CSV and the list; the dashboard has the line.
	if err := e.store.CreateStaff(ctx, &entitlements.Staff{Email: "viewer@console.test", Role: entitlements.RoleViewer}, "a long enough password", "test"); err != nil {
		t.Fatal(err)
	}
	viewer := client(t)
	(&env{ts: e.ts}).mustLogin(t, viewer, "viewer@console.test", "a long enough password").Body.Close()
	st, page = get(t, viewer, e.ts.URL+"/staff/licenses/"+lic.ID+"/usage")
	if st != 200 || !strings.Contains(page, "801") || !strings.Contains(page, "80.1\u00a0%") {
		t.Fatalf("staff usage page: %d %.500s", st, page)
	}
	st, csv := get(t, viewer, e.ts.URL+"/staff/licenses/"+lic.ID+"/usage.csv")
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if st != 200 || strings.Join(metering.CSVHeader, ",") != lines[0] || len(lines) < 2 || !strings.Contains(csv, ","+lic.ID+","+a.customer.ID+",enterprise-annual,") {
		t.Fatalf("CSV %d:\n%s", st, csv)
	}
	var sum int64
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		var n int64
		for _, c := range f[4] {
			n = n*10 + int64(c-'0')
		}
		sum += n
	}
	if sum != 801 {
		t.Fatalf("the CSV's tokens add up to %d, not 801", sum)
	}
	if st, _ := get(t, viewer, e.ts.URL+"/staff/licenses/"+lic.ID+"/usage.csv?from=nope"); st != 400 {
		t.Fatalf("bad from: %d", st)
	}
	// At most 366 days, both ends counted: 2026-01-01 to 2027-01-01 is 366 days, one
	// more is refused.
	if st, _ := get(t, viewer, e.ts.URL+"/staff/licenses/"+lic.ID+"/usage.csv?from=2026-01-01&to=2027-01-01"); st != 200 {
		t.Fatalf("366 days: %d", st)
	}
	if st, body := get(t, viewer, e.ts.URL+"/staff/licenses/"+lic.ID+"/usage.csv?from=2026-01-01&to=2027-01-02"); st != 400 || !strings.Contains(body, "366 days") {
		t.Fatalf("367 days: %d %s", st, body)
	}
	if st, page := get(t, viewer, e.ts.URL+"/staff/usage"); st != 200 || !strings.Contains(page, lic.ID) {
		t.Fatalf("list: %d", st)
	}
	if st, page := get(t, viewer, e.ts.URL+"/staff/"); st != 200 || !strings.Contains(page, `id="usage-alerts"`) || !strings.Contains(page, "Licenses past 80 %: 1") {
		t.Fatalf("dashboard: %d %.300s", st, page)
	}
	if st, _ := get(t, viewer, e.ts.URL+"/staff/licenses/lic_01HZY3QK8Y0000000000000009/usage"); st != 404 {
		t.Fatalf("missing license: %d", st)
	}
}
