package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/metrum/licensing/internal/browsertest"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/usage"
)

// testClock is a clock that moves only when told (the air-gapped host's).
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// airGappedExport runs the real usage recorder of an air-gapped host for a license
// over the past `hours` (tokens(i) in hour i), closes it as a shutdown does, and
// exports what it wrote as `verifier usage export` does (usage.Export): the file a
// person carries out. It returns the file, the tokens counted and the reports.
func airGappedExport(t *testing.T, lic *entitlements.License, hours int, tokens func(i int) int64) (string, int64, int) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "usage")
	clk := &testClock{t: time.Now().UTC().Truncate(time.Hour).Add(-time.Duration(hours) * time.Hour)}
	rec, err := usage.Open(usage.Options{Dir: dir, Now: clk.Now, Reporter: "metrum-reference-router/1"})
	if err != nil {
		t.Fatal(err)
	}
	budget, window := entitlements.UsageBudgetOf(lic.Terms.Limits)
	ul := usage.License{ID: lic.ID, Product: lic.Product, ExpiresAt: lic.ExpiresAt, TokenBudget: -1, Window: window, Supersedes: lic.Supersedes,
		InstanceFingerprint: lic.Terms.InstanceFingerprint}
	if budget > 0 {
		ul.TokenBudget = budget
	}
	if err := rec.SetLicense(ul); err != nil {
		t.Fatal(err)
	}
	var total int64
	for i := range hours {
		clk.Add(30 * time.Minute)
		if err := rec.Consume(tokens(i)); err != nil {
			t.Fatal(err)
		}
		total += tokens(i)
		clk.Add(30 * time.Minute)
		if err := rec.Tick(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	bodies, n, err := usage.Export(dir, 0)
	if err != nil || len(bodies) != 1 || n < hours {
		t.Fatalf("export: %d bodies, %d reports, %v", len(bodies), n, err)
	}
	out := filepath.Join(t.TempDir(), "usage.json")
	if err := os.WriteFile(out, bodies[0], 0o600); err != nil {
		t.Fatal(err)
	}
	return out, total, n
}

// phone shows the page as a 390×844 phone does.
func (b *staffBrowser) phone(name string) {
	b.t.Helper()
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1)))
	b.shot(name)
	b.do("desktop viewport", chromedp.EmulateViewport(1280, 900))
}

// TestBrowserUsageAirGapped: an air-gapped host's export, made by the real recorder,
// is uploaded in the portal by the customer; the customer's usage page and the
// staff's show the same consumption against the budget, per day and per instance;
// the 80 % warning reaches the dashboard and the customer's mailbox; uploading the
// file again changes nothing; a damaged file is refused on the page. Screenshots at
// 1280 px and on a 390×844 phone.
func TestBrowserUsageAirGapped(t *testing.T) {
	e := mustPortal(t, 0, 0)
	ctx := context.Background()
	a := e.tenant(t, "Acme Corp", "ops@acme.test")
	lic := e.issueWith(t, a.customer.ID, "enterprise-annual", map[string]int64{"token_budget": 1_000_000})
	file, total, reports := airGappedExport(t, lic, 14*24, func(i int) int64 { return 1500 + int64(i%24)*90 })
	if err := e.store.CreateStaff(ctx, &entitlements.Staff{Email: "viewer@staff.test", Role: entitlements.RoleViewer}, "a long enough password", "test"); err != nil {
		t.Fatal(err)
	}

	cust := e.portalBrowser(t, "ops@acme.test")
	cust.do("license page", chromedp.Navigate(e.ts.URL+"/portal/licenses/"+lic.ID), chromedp.WaitVisible(chromedp.ID("usage")))
	cust.do("usage page", chromedp.Click(chromedp.ID("usage")), chromedp.WaitVisible(chromedp.ID("usage-upload")))
	if s := cust.text("#usage-budget"); !strings.Contains(s, "0 of 1,000,000 tokens") {
		t.Fatalf("before the upload: %q", s)
	}
	cust.shot("portal-usage-before")
	cust.do("upload the export", chromedp.SetUploadFiles(chromedp.ID("usage-file"), []string{file}), chromedp.Click(chromedp.ID("upload-usage")),
		chromedp.WaitVisible(chromedp.ID("flash")))
	if f := cust.text("#flash"); !strings.Contains(f, fmt.Sprintf("Uploaded: %d reports accepted.", reports)) {
		t.Fatalf("flash: %q", f)
	}
	want := "851,760 of 1,000,000 tokens"
	if total != 851_760 || !strings.Contains(cust.text("#usage-budget"), want) || !strings.Contains(cust.text("#usage-percent"), "85.1\u00a0%") {
		t.Fatalf("portal budget: %q (%d counted)", cust.text("#usage-budget"), total)
	}
	if s := cust.text("#contact-sales"); !strings.Contains(s, lic.ID) {
		t.Fatalf("past 80 %% without purchase: %q", s)
	}
	if s := cust.text("#usage-chains"); !strings.Contains(s, "metrum-reference-router/1") || !strings.Contains(s, fmt.Sprintf("seq %d", reports)) || !strings.Contains(s, "851,760") {
		t.Fatalf("instances: %s", s)
	}
	cust.shot("portal-usage")
	cust.accessible("portal-usage")
	cust.phone("portal-usage-phone")
	// The same file again: duplicates, counted once.
	cust.do("upload again", chromedp.Navigate(e.ts.URL+"/portal/licenses/"+lic.ID+"/usage"), chromedp.WaitVisible(chromedp.ID("usage-upload")),
		chromedp.SetUploadFiles(chromedp.ID("usage-file"), []string{file}), chromedp.Click(chromedp.ID("upload-usage")),
		chromedp.WaitVisible(chromedp.ID("flash")))
	if f := cust.text("#flash"); !strings.Contains(f, fmt.Sprintf("0 reports accepted, %d already received", reports)) || !strings.Contains(cust.text("#usage-budget"), want) {
		t.Fatalf("second upload: %q", f)
	}
	// A damaged file is refused where the form is.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"reports":["not a report"]}`), 0o600)
	cust.do("upload a damaged file", chromedp.SetUploadFiles(chromedp.ID("usage-file"), []string{bad}), chromedp.Click(chromedp.ID("upload-usage")),
		chromedp.WaitVisible(chromedp.ID("upload-error")))
	if s := cust.text("#upload-error"); !strings.Contains(s, "Refused: report 0") || !strings.Contains(s, "Nothing of the file was kept") {
		t.Fatalf("refusal: %q", s)
	}
	cust.shot("portal-usage-refused")
	// The 80 % warning reached the customer's mailbox.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(e.smtp.Last("ops@acme.test").Data, "has used 80 %") {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(e.smtp.Last("ops@acme.test").Data, "has used 80 %") {
		t.Fatal("no 80 % mail")
	}

	staff := e.staffBrowser(t, "viewer@staff.test")
	if s := staff.text("#usage-alerts"); !strings.Contains(s, "Licenses past 80 %: 1") || !strings.Contains(s, lic.ID) {
		t.Fatalf("dashboard: %q", s)
	}
	staff.shot("console-dashboard-usage")
	staff.do("license page", chromedp.Navigate(e.ts.URL+"/staff/licenses/"+lic.ID), chromedp.WaitVisible(chromedp.ID("usage")))
	staff.do("usage page", chromedp.Click(chromedp.ID("usage")), chromedp.WaitVisible(chromedp.ID("usage-daily")))
	if s := staff.text("#usage-budget"); !strings.Contains(s, want) {
		t.Fatalf("console budget: %q", s)
	}
	if s := staff.text("#usage-chains"); !strings.Contains(s, fmt.Sprintf("seq %d", reports)) {
		t.Fatalf("console instances: %q", s)
	}
	staff.shot("console-usage")
	staff.accessible("console-usage")
	staff.phone("console-usage-phone")
	status, csv := browsertest.Fetch(t, staff.ctx, "/staff/licenses/"+lic.ID+"/usage.csv")
	if status != 200 || !strings.HasPrefix(csv, "day,license_id,customer_id,sku,tokens,requests,reports,instances\n") || strings.Count(csv, "\n") < 15 {
		t.Fatalf("CSV %d:\n%s", status, csv)
	}
	// A license whose hosts forked, skipped reports and restarted: the flags and the
	// refused reports, for staff.
	flagged := e.issueWith(t, a.customer.ID, "enterprise-annual", map[string]int64{"token_budget": 50_000})
	h := newTestHost(t, flagged, time.Now().Add(-30*time.Hour))
	wantAccepted(t, e.postUsage(t, a.token, usage.MarshalBatch(h.nextN(4, 2000))), 4, 0)
	fp := h.payload(time.Hour, map[string]int64{"tokens": 1, "requests": 1})
	fp.Seq, fp.Prev, fp.PeriodStart = 3, usage.Hash(h.sent[2]), h.end.Add(-2*time.Hour).Format(time.RFC3339)
	fp.PeriodEnd = h.end.Add(-time.Hour).Format(time.RFC3339)
	wantRefused(t, e.postUsage(t, a.token, h.sign(fp)), entitlements.EUSAGEFORK, 0, 0)
	h.next(10)
	wantRefused(t, e.postUsage(t, a.token, h.next(10)), entitlements.EUSAGEGAP, 0, 5)
	fresh := newTestHost(t, flagged, h.end.Add(-2*time.Hour))
	wantAccepted(t, e.postUsage(t, a.token, usage.MarshalBatch(fresh.nextN(2, 3000))), 2, 0)
	quiet := newTestHost(t, flagged, time.Now().Add(-20*time.Hour))
	wantAccepted(t, e.postUsage(t, a.token, quiet.next(500)), 1, 0)
	staff.do("flagged license", chromedp.Navigate(e.ts.URL+"/staff/licenses/"+flagged.ID+"/usage"), chromedp.WaitVisible(chromedp.ID("usage-incidents")))
	if s := staff.text("#usage-flags"); !strings.Contains(s, "fork") || !strings.Contains(s, "gap") || !strings.Contains(s, "restart") || !strings.Contains(s, "stale") {
		t.Fatalf("flags: %q", s)
	}
	staff.shot("console-usage-flags")
	staff.accessible("console-usage-flags")
	staff.do("past 80 %", chromedp.Navigate(e.ts.URL+"/staff/licenses/"+lic.ID+"/usage"), chromedp.WaitVisible(chromedp.ID("usage-list-link")),
		chromedp.Click(chromedp.ID("usage-list-link")), chromedp.WaitVisible(chromedp.ID("usage-past")))
	if s := staff.text("#usage-past"); !strings.Contains(s, lic.ID) || !strings.Contains(s, "85.1\u00a0%") {
		t.Fatalf("list: %q", s)
	}
	staff.shot("console-usage-list")
	staff.accessible("console-usage-list")
	staff.phone("console-usage-list-phone")
}
