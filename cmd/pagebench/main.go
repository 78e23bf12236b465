// Command pagebench measures every staff console page over a large dataset: it starts
// a private PostgreSQL, seeds 100,000 licenses, 10,000 customers and 1,000,000 audit
// and 1,000,000 lease events, signs a staff member in, and requests each page
// repeatedly through the real handler, printing each page's p50 and p99 and, as its
// last line:
//
//	pages: licenses=<N> p50=<ms> p99=<ms> worst=<path>
//
// Run: go run ./cmd/pagebench   (-licenses, -customers, -events, -rounds scale it)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/signal"
	"slices"
	"time"

	"github.com/metrum/licensing/cmd/internal/benchkit"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server"
	"github.com/metrum/licensing/internal/storage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pagebench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pagebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nLic := fs.Int("licenses", 100_000, "licenses to seed")
	nCust := fs.Int("customers", 10_000, "customers to seed")
	nEvents := fs.Int("events", 1_000_000, "audit events and lease events to seed (each)")
	rounds := fs.Int("rounds", 40, "requests per page")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	log("starting a private PostgreSQL…")
	url, stopDB, err := benchkit.Database(ctx, "pagebench", "", false)
	if err != nil {
		return err
	}
	defer stopDB()
	store, err := storage.Open(ctx, url)
	if err != nil {
		return err
	}
	defer store.Close()
	svc, admin, done, err := benchkit.Issuer(ctx, store, "pagebench")
	if err != nil {
		return err
	}
	defer done()
	start := time.Now()
	log("seeding %d customers, %d licenses, %d audit and %d lease events…", *nCust, *nLic, *nEvents, *nEvents)
	if err := seed(ctx, store, *nCust, *nLic, *nEvents); err != nil {
		return err
	}
	log("seeded in %s", time.Since(start).Round(time.Second))
	srv := &server.Server{Svc: svc, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	c, err := benchkit.SignIn(ts.URL, admin.Email)
	if err != nil {
		return err
	}
	var lic, cust, ent string
	store.Pool().QueryRow(ctx, `SELECT id, customer_id, entitlement_id FROM licenses ORDER BY issued_at DESC LIMIT 1 OFFSET 500`).Scan(&lic, &cust, &ent)
	pages := []string{"/staff/", "/staff/licenses", "/staff/licenses?status=active&product=genai-smart-router&sku=pilot-30d",
		"/staff/licenses?expiring=30", "/staff/licenses/" + lic, "/staff/customers", "/staff/customers?q=acme%20042",
		"/staff/customers/" + cust, "/staff/entitlements", "/staff/entitlements?state=all", "/staff/entitlements/" + ent,
		"/staff/bundles", "/staff/keys", "/staff/audit", "/staff/audit?action=license.issue", "/staff/audit?subject=" + lic,
		"/staff/accounts", "/staff/tokens",
		// Searches, sorts and the CSV (issue 24): a name, a contract reference, an
		// entitlement ID; the sort needing the customers' names; deep keyset pages.
		"/staff/licenses?q=acme%2000042", "/staff/licenses?q=PO-0042000", "/staff/licenses?q=" + ent, "/staff/licenses?sort=customer",
		"/staff/licenses?sort=-expires&status=active&after=" + lic, "/staff/licenses.csv?q=acme%2000042", "/staff/customers?q=PO-0042000",
		"/staff/customers?q=" + lic, "/staff/entitlements?state=all&sort=customer", "/staff/entitlements?state=all&q=acme%2000042"}
	var all []time.Duration
	worst, worstP99 := "", time.Duration(0)
	fmt.Fprintf(stdout, "%-70s %9s %9s\n", "page", "p50 ms", "p99 ms")
	for _, p := range pages {
		// One unmeasured request per page first, as a running issuer is warm. The
		// dashboard's plots are kept for a minute or until the audit trail moves on:
		// a change recorded just before makes this first request compute them, which
		// is the "cold" figure printed below.
		if p == "/staff/" {
			if err := svc.CreateCustomer(ctx, &entitlements.Customer{Name: "Pagebench cold plots"}, admin); err != nil {
				return err
			}
		}
		t0 := time.Now()
		if resp, err := c.Get(ts.URL + p); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if p == "/staff/" {
			fmt.Fprintf(stdout, "%-70s %9.1f (cold: plots computed after a change)\n", p, benchkit.MS(time.Since(t0)))
		}
		var ds []time.Duration
		for range *rounds {
			t0 := time.Now()
			resp, err := c.Get(ts.URL + p)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("%s: %d", p, resp.StatusCode)
			}
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		p50, p99 := pct(ds, 50), pct(ds, 99)
		fmt.Fprintf(stdout, "%-70s %9.1f %9.1f\n", p, benchkit.MS(p50), benchkit.MS(p99))
		all = append(all, ds...)
		if p99 > worstP99 {
			worst, worstP99 = p, p99
		}
	}
	slices.Sort(all)
	fmt.Fprintf(stdout, "pages: licenses=%d p50=%.1f p99=%.1f worst=%s\n", *nLic, benchkit.MS(pct(all, 50)), benchkit.MS(pct(all, 99)), worst)
	return nil
}

func pct(ds []time.Duration, p int) time.Duration {
	i := len(ds) * p / 100
	if i >= len(ds) {
		i = len(ds) - 1
	}
	return ds[i]
}

// seed fills the database with SQL: plausible rows, not signed documents (the pages
// read metadata; the file bytes are placeholders).
func seed(ctx context.Context, store *storage.Store, nCust, nLic, nEvents int) error {
	var kid string
	if err := store.Pool().QueryRow(ctx, `SELECT kid FROM active_keys WHERE product = 'genai-smart-router' AND purpose = 'license'`).Scan(&kid); err != nil {
		return err
	}
	steps := []struct {
		what string
		sql  string
		args []any
	}{
		{"customers", `INSERT INTO customers (id, name, email, created_at)
			SELECT 'cus_01' || lpad(upper(to_hex(i)), 24, '0'), 'Acme ' || lpad(i::text, 5, '0'), 'ops' || i || '@example.com', now() - (i || ' minutes')::interval
			FROM generate_series(1, $1) i`, []any{nCust}},
		{"entitlements", `INSERT INTO entitlements (id, customer_id, product, template_name, template_version, state, starts_at, ends_at, created_by, created_at, decided_by, contract_ref)
			SELECT 'ent_01' || lpad(upper(to_hex(i)), 24, '0'), 'cus_01' || lpad(upper(to_hex(1 + i % $2)), 24, '0'), 'genai-smart-router',
				(ARRAY['enterprise-annual', 'pilot-30d', 'eval-72h'])[1 + i % 3], 1, CASE WHEN i % 50 = 0 THEN 'draft' ELSE 'issued' END,
				now() - ((i % 300) || ' days')::interval, now() + ((i % 400 + 1) || ' days')::interval, 'maker@example.com', now() - ((i % 300) || ' days')::interval, 'checker@example.com',
				CASE WHEN i % 2 = 0 THEN 'PO-' || lpad(i::text, 7, '0') ELSE '' END
			FROM generate_series(1, $1) i`, []any{nLic, nCust}},
		{"licenses", `INSERT INTO licenses (id, entitlement_id, customer_id, product, sku, template_version, key_id, issued_at, not_before, expires_at, form,
				features, limits, grace_period_seconds, status, status_effective_at, file_bytes, file_sha256, file_name, content_type, summary, created_by)
			SELECT 'lic_01' || lpad(upper(to_hex(i)), 24, '0'), 'ent_01' || lpad(upper(to_hex(i)), 24, '0'), 'cus_01' || lpad(upper(to_hex(1 + i % $2)), 24, '0'),
				'genai-smart-router', (ARRAY['enterprise-annual', 'pilot-30d', 'eval-72h'])[1 + i % 3], 1, $3,
				now() - ((i % 300) || ' days')::interval - (i || ' seconds')::interval, now() - ((i % 300) || ' days')::interval,
				now() - ((i % 300) || ' days')::interval + ((i % 400 + 1) || ' days')::interval, 'envelope',
				ARRAY['routing', 'usage_reporting'], '{"max_instances": 4}', 86400,
				CASE WHEN i % 97 = 0 THEN 'revoked' ELSE 'active' END, CASE WHEN i % 97 = 0 THEN now() ELSE NULL END,
				'\x7b7d', sha256('\x7b7d'), 'license.json', 'application/json', '{}', 'maker@example.com'
			FROM generate_series(1, $1) i WHERE i % 50 <> 0`, []any{nLic, nCust, kid}},
		{"audit events", `INSERT INTO audit_events (at, actor, action, subject, details, prev_hash, hash)
			SELECT now() - ((($1 - i) / 10) || ' seconds')::interval, 'maker@example.com', (ARRAY['license.issue', 'entitlement.create', 'entitlement.approve'])[1 + i % 3],
				'lic_01' || lpad(upper(to_hex(1 + i % $2)), 24, '0'), '{}', sha256(int8send(i - 1)), sha256(int8send(i))
			FROM generate_series(1, $1) i`, []any{nEvents, nLic}},
		{"lease events", `INSERT INTO lease_events (at, license_id, instance_fingerprint, lease_id, outcome, reason)
			SELECT now() - ((($1 - i) * 0.6) || ' seconds')::interval, 'lic_01' || lpad(upper(to_hex(1 + i % $2)), 24, '0'), 'host-' || (i % 7),
				'', CASE WHEN i % 20 = 0 THEN 'refused' ELSE 'renewed' END, CASE WHEN i % 20 = 0 THEN 'license-limit-exceeded' ELSE '' END
			FROM generate_series(1, $1) i`, []any{nEvents, nLic}},
	}
	for _, s := range steps {
		t0 := time.Now()
		if _, err := store.Pool().Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("seed %s: %w", s.what, err)
		}
		fmt.Fprintf(os.Stderr, "  %s: %s\n", s.what, time.Since(t0).Round(time.Millisecond))
	}
	// Steady state: autovacuum has visited these tables (visibility map, BRIN ranges
	// summarized), as on a running issuer; a bulk load that no VACUUM has seen is not.
	if _, err := store.Pool().Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return err
	}
	// What the running issuer's scheduler does every minute.
	return store.RollupLeaseHours(ctx)
}
