package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/metering"
	"github.com/metrum/licensing/internal/ratelimit"
	"github.com/metrum/licensing/internal/server"
	"github.com/metrum/licensing/usage"
)

// TestUsagePartitionsAndRetention: raw reports go to the partition of the month they
// are received in, made on demand when the maintenance has not made it ahead; the
// maintenance keeps partitions ahead and drops those wholly past usage.retention
// (their reports with them), while the daily rollups and the chains stay; a report
// re-sent after its raw copy was dropped is a duplicate (it was counted), not a fork.
func TestUsagePartitionsAndRetention(t *testing.T) {
	e := mustPortal(t, 0, 0)
	ctx := context.Background()
	a := e.tenant(t, "Acme Corp", "ops@acme.test")
	cred, err := metering.CredentialOf(&entitlements.Principal{CustomerID: a.customer.ID, Kind: entitlements.PrincipalCustomerToken, Actor: a.tokenID})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now().UTC()
	svc := metering.New(e.store, metering.Options{Retention: 60 * 24 * time.Hour, Now: func() time.Time { return clock }})
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go svc.Run(rctx)
	h := newTestHost(t, a.router, time.Now().Add(-10*time.Hour))
	if _, err := svc.Ingest(ctx, cred, usage.MarshalBatch(h.nextN(3, 10))); err != nil {
		t.Fatal(err)
	}
	now := time.Date(clock.Year(), clock.Month(), 1, 0, 0, 0, 0, time.UTC)
	month := func(m time.Time) string { return "usage_reports_y" + m.Format("2006") + "m" + m.Format("01") }
	parts, _ := e.store.UsagePartitions(ctx)
	for i := range 3 {
		if !slices.Contains(parts, month(now.AddDate(0, i, 0))) {
			t.Fatalf("partitions %v lack %s (made ahead)", parts, month(now.AddDate(0, i, 0)))
		}
	}
	// Five months on, with no maintenance in between: the batch makes its partition.
	clock = now.AddDate(0, 5, 3)
	if _, err := svc.Ingest(ctx, cred, h.next(10)); err != nil {
		t.Fatal(err)
	}
	var where string
	e.store.Pool().QueryRow(ctx, `SELECT tableoid::regclass::text FROM usage_reports WHERE seq = 4`).Scan(&where)
	if where != month(clock) {
		t.Fatalf("seq 4 is in %q, want %s", where, month(clock))
	}
	// The maintenance drops what is older than 60 days: the first reports' month.
	if err := svc.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	parts, _ = e.store.UsagePartitions(ctx)
	if slices.Contains(parts, month(now)) || !slices.Contains(parts, month(clock)) || !slices.Contains(parts, month(clock.AddDate(0, 2, 0))) {
		t.Fatalf("after maintenance: %v", parts)
	}
	var raw int
	e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM usage_reports`).Scan(&raw)
	if raw != 1 || e.tokensOf(t, a.router.ID) != 40 {
		t.Fatalf("%d raw reports kept (want 1), %d tokens in the rollups (want 40)", raw, e.tokensOf(t, a.router.ID))
	}
	// Re-sending a report whose raw copy is gone: a duplicate, nothing changes.
	ans, err := svc.Ingest(ctx, cred, usage.MarshalBatch([][]byte{h.sent[1], h.sent[2], h.sent[3], h.sent[4]}))
	if err != nil || ans.Accepted != 0 || ans.Duplicates != 4 {
		t.Fatalf("re-sent after the retention: %+v, %v", ans, err)
	}
}

// TestUsageRollingWindow: for a license with usage_window_seconds, what counts
// against the budget is the window's days (the term's tokens are shown beside); days
// that age out of it stop counting without any new report.
func TestUsageRollingWindow(t *testing.T) {
	e := mustPortal(t, 0, 0)
	ctx := context.Background()
	a := e.tenant(t, "Acme Corp", "ops@acme.test") // a.pilot: 30-day window, 25M budget
	// A host that served a million tokens 45 days ago, was down (24-hour reports of
	// nothing, as the recorder writes a long silence), and served 500 in the last hours.
	h := newTestHost(t, a.pilot, time.Now().Add(-45*24*time.Hour))
	bodies := [][]byte{h.next(1_000_000)}
	for h.end.Before(time.Now().Add(-26 * time.Hour)) {
		q := h.payload(24*time.Hour, map[string]int64{"tokens": 0, "requests": 0})
		env := h.sign(q)
		h.commit(q, env)
		bodies = append(bodies, env)
	}
	bodies = append(bodies, h.next(500))
	wantAccepted(t, e.postUsage(t, a.leaseTok, usage.MarshalBatch(bodies)), int64(len(bodies)), 0)
	o, err := e.usage.LicenseUsage(ctx, a.pilot.ID, 0, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	if o.Totals.Tokens != 1_000_500 || o.Totals.Used != 500 || o.Totals.Window != 30*24*time.Hour || o.Totals.Budget != 25_000_000 {
		t.Fatalf("term %d, window %d (%s of %d)", o.Totals.Tokens, o.Totals.Used, o.Totals.Window, o.Totals.Budget)
	}
	var used int64
	e.store.Pool().QueryRow(ctx, `SELECT used FROM usage_licenses WHERE license_id = $1`, a.pilot.ID).Scan(&used)
	if used != 500 {
		t.Fatalf("stored window usage %d", used)
	}
	// Forty days on, the hourly maintenance has aged the recent tokens out too.
	later := metering.New(e.store, metering.Options{Now: func() time.Time { return time.Now().Add(40 * 24 * time.Hour) }})
	if err := later.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	e.store.Pool().QueryRow(ctx, `SELECT used FROM usage_licenses WHERE license_id = $1`, a.pilot.ID).Scan(&used)
	if used != 0 {
		t.Fatalf("window usage %d after the window moved on", used)
	}
}

// TestUsageRateLimit: 429 with Retry-After per credential, after the credential was
// checked; another credential is not held back by it.
func TestUsageRateLimit(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme Corp", "ops@acme.test")
	ts := httptest.NewServer((&server.Server{Svc: e.svc, Portal: e.portal, Usage: e.usage, UsageLimit: ratelimit.New(0.01, 2, 0),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	defer ts.Close()
	post := func(tok string, body []byte) leaseResp {
		req, _ := http.NewRequest("POST", ts.URL+"/v1/usage", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+tok)
		return do(t, req)
	}
	h := newTestHost(t, a.router, time.Now().Add(-5*time.Hour))
	wantAccepted(t, post(a.token, h.next(1)), 1, 0)
	wantAccepted(t, post(a.token, h.sent[1]), 0, 1)
	r := post(a.token, h.next(1))
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("third upload: %d (Retry-After %q)", r.status, r.header.Get("Retry-After"))
	}
	if r := post("wrong", h.next(1)); r.status != 401 {
		t.Fatalf("a wrong token is a 401 before any limit: %d", r.status)
	}
	hp := newTestHost(t, a.pilot, time.Now().Add(-5*time.Hour))
	wantAccepted(t, post(a.leaseTok, hp.next(1)), 1, 0)
}
