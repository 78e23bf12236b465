package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/logctx"
	"github.com/metrum/licensing/internal/server"
	"github.com/metrum/licensing/internal/staffapi"
)

// TestMetricsAccess: /metrics is not on the handler unless it has a scrape token
// (then only with it) or is told to serve it openly (dev); MetricsOff keeps it off
// the handler for a listener of its own.
func TestMetricsAccess(t *testing.T) {
	e := mustLeaseServer(t, 0, 0)
	get := func(url, auth string) int {
		req, _ := http.NewRequest("GET", url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		return do(t, req).status
	}
	serve := func(s *server.Server) string {
		s.Svc, s.Metrics, s.Log = e.svc, e.metrics, slog.New(slog.DiscardHandler)
		ts := httptest.NewServer(s.Handler())
		t.Cleanup(ts.Close)
		return ts.URL + "/metrics"
	}
	if st := get(serve(&server.Server{}), ""); st != 404 {
		t.Errorf("no token, not open: %d, want 404", st)
	}
	const tok = "a-scrape-token-for-tests"
	url := serve(&server.Server{MetricsToken: tok})
	for auth, want := range map[string]int{"": 401, "Bearer wrong-token-entirely": 401, "Bearer " + tok: 200} {
		if st := get(url, auth); st != want {
			t.Errorf("token set, Authorization %q: %d, want %d", auth, st, want)
		}
	}
	off := &server.Server{MetricsToken: tok, MetricsOff: true}
	if st := get(serve(off), "Bearer "+tok); st != 404 {
		t.Errorf("MetricsOff: %d on the handler, want 404", st)
	}
	own := httptest.NewServer(off.MetricsHandler())
	defer own.Close()
	if a, b := get(own.URL, ""), get(own.URL, "Bearer "+tok); a != 401 || b != 200 {
		t.Errorf("its own listener: %d without the token, %d with it", a, b)
	}
}

var sample = regexp.MustCompile(`(?m)^(metrum_[a-z_]+)(\{[^}]*\})? (\S+)$`)

// scrapeValues reads the metrum_ samples of a scrape, keyed by name and labels.
func scrapeValues(text string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range sample.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(m[3], 64)
		out[m[1]+m[2]] = v
	}
	return out
}

// TestOpsGauges: the scheduler's snapshot becomes the gauges: days to a key's
// not_after, each bundle's age and time left, licenses expiring within 7 and 30 days,
// the approval queue; nothing is shown before the first read.
func TestOpsGauges(t *testing.T) {
	e := mustLeaseServer(t, 0, 0)
	ctx := context.Background()
	g := server.NewOpsGauges(e.metrics)
	if v := scrapeValues(e.scrape(t)); len(v) > 0 {
		for k := range v {
			if strings.HasPrefix(k, "metrum_ops_") || strings.HasPrefix(k, "metrum_bundle") || strings.HasPrefix(k, "metrum_signing") {
				if k != "metrum_ops_gauges_refresh_errors_total" {
					t.Errorf("before the first read: %s", k)
				}
			}
		}
	}
	e.mustLeaseLicense(t, entitlements.EntitlementInput{}) // a pilot: 30 days, so within 30d and not 7d
	if _, err := e.svc.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: mustCustomer(t, e), Template: "enterprise-annual"}, lMaker); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PublishBundle(ctx, "genai-smart-router", lChecker); err != nil {
		t.Fatal(err)
	}
	keys, err := e.svc.ListKeys(ctx, lAdmin)
	if err != nil {
		t.Fatal(err)
	}
	kid := keys[0].KID
	if err := e.svc.SetKeyNotAfter(ctx, kid, time.Now().Add(10*24*time.Hour), lAdmin); err != nil {
		t.Fatal(err)
	}
	st, err := e.svc.OpsStatus(ctx)
	g.Observe(st, err)
	g.Observe(nil, context.DeadlineExceeded) // a failed read later keeps the last good numbers
	v := scrapeValues(e.scrape(t))
	var keyDays float64
	for k, x := range v {
		if strings.HasPrefix(k, `metrum_signing_key_not_after_days{kid="`+kid+`"`) {
			keyDays = x
		}
	}
	if keyDays < 9.9 || keyDays > 10 {
		t.Errorf("days to the key's not_after: %v, want about 10", keyDays)
	}
	left, age := v[`metrum_bundle_expiry_seconds{product="genai-smart-router"}`], v[`metrum_bundle_age_seconds{product="genai-smart-router"}`]
	if left < 6*86400 || left > 7*86400 || age < 0 || age > 60 {
		t.Errorf("bundle: %v s left, %v s old", left, age)
	}
	if v[`metrum_licenses_expiring{within="7d"}`] != 0 || v[`metrum_licenses_expiring{within="30d"}`] != 1 ||
		v["metrum_approval_queue_length"] != 1 || v["metrum_order_review_queue_length"] != 0 ||
		v["metrum_ops_gauges_refresh_errors_total"] != 1 || v["metrum_ops_gauges_refreshed_timestamp_seconds"] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("gauges: %v", v)
	}
}

func mustCustomer(t *testing.T, e *leaseEnv) string {
	t.Helper()
	c := &entitlements.Customer{Name: "Queue Co"}
	if err := e.svc.CreateCustomer(context.Background(), c, lMaker); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// syncLog is a log destination the handler's goroutines write while the test reads.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServiceLogsCarryTheRequestID: a line the service layer logs for a request (a
// license issued through the staff API) names the request's ID, the one in its
// X-Request-ID and its access log line.
func TestServiceLogsCarryTheRequestID(t *testing.T) {
	var out syncLog
	log := slog.New(logctx.Handler(slog.NewTextHandler(&out, nil)))
	e := mustLeaseServer(t, 0, 0, func(s *server.Server) { s.Log = log })
	e.svc.Log = log
	ctx := context.Background()
	st := &entitlements.Staff{Email: "issuer@staff.test", Role: entitlements.RoleIssuer}
	if err := e.store.CreateStaff(ctx, st, "a long enough password", "test"); err != nil {
		t.Fatal(err)
	}
	tok, _, err := e.store.CreateStaffToken(ctx, st.ID, "test", time.Now().Add(time.Hour), "test")
	if err != nil {
		t.Fatal(err)
	}
	ent, err := e.svc.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: mustCustomer(t, e), Template: "enterprise-annual"}, lMaker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, ent.ID, lChecker); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(staffapi.ID{ID: ent.ID})
	req, _ := http.NewRequest("POST", e.ts.URL+staffapi.Prefix+staffapi.LicenseIssue, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	r := do(t, req)
	rid := r.header.Get("X-Request-ID")
	if r.status != 200 || rid == "" {
		t.Fatalf("issue: %d %s", r.status, r.body)
	}
	var issued, access bool
	for _, line := range strings.Split(out.String(), "\n") {
		issued = issued || (strings.Contains(line, `msg="license issued"`) && strings.Contains(line, "request_id="+rid))
		access = access || (strings.Contains(line, "msg=http") && strings.Contains(line, "request_id="+rid))
	}
	if !issued || !access {
		t.Fatalf("request %s: the service's line names it %v, the access log %v:\n%s", rid, issued, access, out.String())
	}
}
