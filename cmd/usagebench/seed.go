package main

import (
	"context"
	"fmt"
	"time"

	"github.com/metrum/licensing/internal/storage"
)

// licenseID is the seeded license number i's ID (as pagebench makes them).
func licenseID(i int) string { return fmt.Sprintf("lic_01%024X", i) }

// seed fills the database with SQL: customers, licenses with a 5M-token budget (every
// seventh with a rolling 30-day window), one chain each, `days` days of daily rollups
// (tokens and requests) that put about a third of them past 80 %, their totals, and
// the warnings those would have sent. Plausible rows, not signed documents: the pages
// read rollups and metadata.
func seed(ctx context.Context, store *storage.Store, nLic, days int, log func(string, ...any)) error {
	var kid string
	if err := store.Pool().QueryRow(ctx, `SELECT kid FROM active_keys WHERE product = 'genai-smart-router' AND purpose = 'license'`).Scan(&kid); err != nil {
		return err
	}
	nCust := max(nLic/10, 1)
	steps := []struct {
		what string
		sql  string
		args []any
	}{
		{"customers", `INSERT INTO customers (id, name, email, created_at)
			SELECT 'cus_01' || lpad(upper(to_hex(i)), 24, '0'), 'Fleet ' || lpad(i::text, 5, '0'), 'ops' || i || '@example.com', now()
			FROM generate_series(1, $1) i`, []any{nCust}},
		{"entitlements", `INSERT INTO entitlements (id, customer_id, product, template_name, template_version, state, starts_at, ends_at, created_by, created_at, decided_by)
			SELECT 'ent_01' || lpad(upper(to_hex(i)), 24, '0'), 'cus_01' || lpad(upper(to_hex(1 + i % $2)), 24, '0'), 'genai-smart-router',
				'enterprise-annual', 1, 'issued', now() - interval '120 days', now() + interval '245 days', 'maker@example.com', now() - interval '120 days', 'checker@example.com'
			FROM generate_series(1, $1) i`, []any{nLic, nCust}},
		{"licenses", `INSERT INTO licenses (id, entitlement_id, customer_id, product, sku, template_version, key_id, issued_at, not_before, expires_at, form,
				features, limits, grace_period_seconds, status, file_bytes, file_sha256, file_name, content_type, summary, created_by)
			SELECT 'lic_01' || lpad(upper(to_hex(i)), 24, '0'), 'ent_01' || lpad(upper(to_hex(i)), 24, '0'), 'cus_01' || lpad(upper(to_hex(1 + i % $2)), 24, '0'),
				'genai-smart-router', 'enterprise-annual', 1, $3, now() - interval '120 days' - (i || ' seconds')::interval, now() - interval '120 days',
				now() + interval '245 days', 'envelope', ARRAY['routing', 'usage_reporting'],
				CASE WHEN i % 7 = 0 THEN '{"max_instances": 4, "token_budget": 5000000, "usage_window_seconds": 2592000}'
					ELSE '{"max_instances": 4, "token_budget": 5000000}' END::jsonb,
				86400, 'active', '\x7b7d', sha256('\x7b7d'), 'license.json', 'application/json', '{}', 'maker@example.com'
			FROM generate_series(1, $1) i`, []any{nLic, nCust, kid}},
		{"chains", `INSERT INTO usage_chains (license_id, instance_id, product, key_id, host_key, instance_fingerprint, reporter, first_period_start,
				last_seq, last_hash, last_period_end, last_totals, period_seconds, created_at, last_report_at)
			SELECT 'lic_01' || lpad(upper(to_hex(i)), 24, '0'), 'ins_01' || lpad(upper(to_hex(i)), 24, '0'), 'genai-smart-router', 'seeded',
				sha256(int8send(i)), '', 'metrum-reference-router/1', date_trunc('day', now()) - make_interval(days => $2),
				24 * $2::int, sha256(int8send(-i)), date_trunc('hour', now()), '{}', 3600, now() - make_interval(days => $2), date_trunc('hour', now())
			FROM generate_series(1, $1) i`, []any{nLic, days - 1}},
		{"daily rollups", `INSERT INTO usage_daily (license_id, day, instance_id, counter, amount, reports)
			SELECT 'lic_01' || lpad(upper(to_hex(i)), 24, '0'), current_date - d, 'ins_01' || lpad(upper(to_hex(i)), 24, '0'), c.name,
				CASE WHEN c.name = 'tokens' THEN ((i::bigint * 7919 + d * 104729) % 10000) * (1 + i % 12) ELSE 24 + (i + d) % 200 END, 24
			FROM generate_series(1, $1) i, generate_series(0, $2 - 1) d, (VALUES ('tokens'), ('requests')) c(name)`, []any{nLic, days}},
		{"license totals", `INSERT INTO usage_licenses (license_id, customer_id, tokens, requests, reports, budget, window_seconds, used, permille, used_at,
				first_report_at, last_report_at)
			SELECT l.id, l.customer_id, t.tokens, t.requests, t.reports, 5000000, CASE WHEN l.limits ? 'usage_window_seconds' THEN 2592000 ELSE 0 END,
				CASE WHEN l.limits ? 'usage_window_seconds' THEN t.window ELSE t.tokens END, 0, now(), now() - make_interval(days => $1), date_trunc('hour', now())
			FROM licenses l JOIN (SELECT license_id, sum(amount) FILTER (WHERE counter = 'tokens') AS tokens,
					sum(amount) FILTER (WHERE counter = 'requests') AS requests, sum(reports) FILTER (WHERE counter = 'tokens') AS reports,
					sum(amount) FILTER (WHERE counter = 'tokens' AND day >= current_date - 30) AS window
				FROM usage_daily GROUP BY license_id) t ON t.license_id = l.id`, []any{days}},
		{"shares", `UPDATE usage_licenses SET permille = least(10000, used * 1000 / budget)`, nil},
		{"warnings", `INSERT INTO usage_warnings (license_id, threshold, customer_id, crossed_at, used, budget)
			SELECT license_id, t, customer_id, now() - ((hashtext(license_id) & 1023) || ' minutes')::interval, used, budget
			FROM usage_licenses, (VALUES (80), (100)) th(t) WHERE permille >= t * 10`, nil},
	}
	// One connection without the pool's statement timeout: 18M rollup rows take longer
	// than any request may.
	conn, err := store.Pool().Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0`); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `RESET statement_timeout`)
	for _, s := range steps {
		t0 := time.Now()
		if _, err := conn.Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("seed %s: %w", s.what, err)
		}
		log("  %s: %s", s.what, time.Since(t0).Round(time.Millisecond))
	}
	// Steady state: autovacuum has visited the tables, as on a running issuer.
	t0 := time.Now()
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return err
	}
	log("  vacuum analyze: %s", time.Since(t0).Round(time.Millisecond))
	return nil
}
