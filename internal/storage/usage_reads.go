package storage

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// UsageTotals returns a license's totals as the last batch (or the window sweep)
// left them; a license that never reported has zeros.
func (s *Store) UsageTotals(ctx context.Context, licenseID string) (*entitlements.UsageTotals, error) {
	t := &entitlements.UsageTotals{LicenseID: licenseID}
	var win int64
	var first, last time.Time
	err := s.pool.QueryRow(ctx, `SELECT customer_id, tokens, requests, reports, budget, window_seconds, used, first_report_at, last_report_at
		FROM usage_licenses WHERE license_id = $1`, licenseID).Scan(&t.CustomerID, &t.Tokens, &t.Requests, &t.Reports, &t.Budget, &win, &t.Used, &first, &last)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, nil
	}
	if err != nil {
		return nil, bounded(err)
	}
	t.Window, t.FirstReport, t.LastReportAt = time.Duration(win)*time.Second, &first, &last
	return t, nil
}

// UsageWindowTokens is a license's tokens in the daily rollups from day from on.
func (s *Store) UsageWindowTokens(ctx context.Context, licenseID string, from time.Time) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(amount), 0)::bigint FROM usage_daily
		WHERE license_id = $1 AND day >= $2 AND counter = 'tokens'`, licenseID, from).Scan(&n)
	return n, bounded(err)
}

// UsageDays returns a license's days from `from` through `to` (dates, UTC), oldest
// first, with days without reports as zeros. Reports per day counts, per instance,
// the reports of its most reported counter (every report of ours carries tokens and
// requests).
func (s *Store) UsageDays(ctx context.Context, licenseID string, from, to time.Time) ([]entitlements.UsageDay, error) {
	rows, err := s.pool.Query(ctx, `WITH d AS (
			SELECT day, instance_id, sum(amount) FILTER (WHERE counter = 'tokens') AS tokens,
				sum(amount) FILTER (WHERE counter = 'requests') AS requests, max(reports) AS reports
			FROM usage_daily WHERE license_id = $1 AND day BETWEEN $2 AND $3 GROUP BY day, instance_id)
		SELECT g.day::date, coalesce(sum(d.tokens), 0)::bigint, coalesce(sum(d.requests), 0)::bigint, coalesce(sum(d.reports), 0)::bigint
		FROM generate_series($2::date, $3::date, interval '1 day') AS g(day) LEFT JOIN d ON d.day = g.day::date
		GROUP BY g.day ORDER BY g.day`, licenseID, from, to)
	if err != nil {
		return nil, bounded(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (entitlements.UsageDay, error) {
		var d entitlements.UsageDay
		err := r.Scan(&d.Day, &d.Tokens, &d.Requests, &d.Reports)
		d.Day = d.Day.UTC()
		return d, err
	})
}

// UsageChains returns a license's chains, most recently reporting first (at most limit).
func (s *Store) UsageChains(ctx context.Context, licenseID string, limit int) ([]entitlements.UsageChain, error) {
	rows, err := s.pool.Query(ctx, `SELECT license_id, instance_id, key_id, instance_fingerprint, reporter, first_period_start,
			last_period_end, last_seq, period_seconds, created_at, last_report_at,
			coalesce((last_totals ->> 'tokens')::bigint, 0), coalesce((last_totals ->> 'requests')::bigint, 0),
			restart_of, restarted_by, forks, gaps
		FROM usage_chains WHERE license_id = $1 ORDER BY last_report_at DESC, instance_id LIMIT $2`, licenseID, limit)
	if err != nil {
		return nil, bounded(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (entitlements.UsageChain, error) {
		var c entitlements.UsageChain
		err := r.Scan(&c.LicenseID, &c.InstanceID, &c.KeyID, &c.Fingerprint, &c.Reporter, &c.FirstStart, &c.LastEnd, &c.LastSeq,
			&c.PeriodSeconds, &c.CreatedAt, &c.LastReportAt, &c.Tokens, &c.Requests, &c.RestartOf, &c.RestartedBy, &c.Forks, &c.Gaps)
		return c, err
	})
}

// UsageIncidents returns a license's recorded forks and gaps, latest first.
func (s *Store) UsageIncidents(ctx context.Context, licenseID string, limit int) ([]entitlements.UsageIncident, error) {
	rows, err := s.pool.Query(ctx, `SELECT license_id, instance_id, kind, seq, next_seq, envelope_sha256, first_at, last_at, count
		FROM usage_incidents WHERE license_id = $1 ORDER BY last_at DESC, instance_id, seq LIMIT $2`, licenseID, limit)
	if err != nil {
		return nil, bounded(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (entitlements.UsageIncident, error) {
		var in entitlements.UsageIncident
		var h []byte
		err := r.Scan(&in.LicenseID, &in.InstanceID, &in.Kind, &in.Seq, &in.NextSeq, &h, &in.FirstAt, &in.LastAt, &in.Count)
		copy(in.Hash[:], h)
		return in, err
	})
}

// UsageWarnings returns the warnings of a license (licenseID set) or the latest of all
// (licenseID ""), newest first.
func (s *Store) UsageWarnings(ctx context.Context, licenseID string, limit int) ([]entitlements.UsageWarning, error) {
	rows, err := s.pool.Query(ctx, `SELECT w.license_id, w.customer_id, c.name, w.threshold, w.crossed_at, w.used, w.budget
		FROM usage_warnings w JOIN customers c ON c.id = w.customer_id
		WHERE $1 = '' OR w.license_id = $1 ORDER BY w.crossed_at DESC, w.license_id, w.threshold DESC LIMIT $2`, licenseID, limit)
	if err != nil {
		return nil, bounded(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (entitlements.UsageWarning, error) {
		var w entitlements.UsageWarning
		err := r.Scan(&w.LicenseID, &w.CustomerID, &w.CustomerName, &w.Threshold, &w.CrossedAt, &w.Used, &w.Budget)
		return w, err
	})
}

// UsagePast lists the licenses whose consumption is at least minPermille of their
// budget, highest share first (at most limit), from the partial index.
func (s *Store) UsagePast(ctx context.Context, minPermille int64, limit int) ([]entitlements.UsageLicenseRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT u.license_id, u.customer_id, c.name, l.sku, u.used, u.budget, u.permille, u.last_report_at
		FROM usage_licenses u JOIN licenses l ON l.id = u.license_id JOIN customers c ON c.id = u.customer_id
		WHERE u.permille >= 800 AND u.permille >= $1 ORDER BY u.permille DESC, u.license_id LIMIT $2`, minPermille, limit)
	if err != nil {
		return nil, bounded(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (entitlements.UsageLicenseRow, error) {
		var x entitlements.UsageLicenseRow
		var last time.Time
		err := r.Scan(&x.LicenseID, &x.CustomerID, &x.CustomerName, &x.SKU, &x.Used, &x.Budget, &x.Permille, &last)
		x.LastReportAt = &last
		return x, err
	})
}

// UsageAlertCounts counts the licenses past 80 % and past 100 % of their budget.
func (s *Store) UsageAlertCounts(ctx context.Context) (past80, past100 int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE permille >= 1000) FROM usage_licenses WHERE permille >= 800`).Scan(&past80, &past100)
	return past80, past100, bounded(err)
}

// UsageCSVRow is one day of one license in the billing export.
type UsageCSVRow struct {
	Day                                  time.Time
	Tokens, Requests, Reports, Instances int64
}

// UsageDailyRows calls fn for each day a license has rollups in [from, to], oldest
// first.
func (s *Store) UsageDailyRows(ctx context.Context, licenseID string, from, to time.Time, fn func(UsageCSVRow) error) error {
	rows, err := s.pool.Query(ctx, `SELECT day, sum(tokens)::bigint, sum(requests)::bigint, sum(reports)::bigint, count(*)
		FROM (SELECT day, instance_id, coalesce(sum(amount) FILTER (WHERE counter = 'tokens'), 0) AS tokens,
				coalesce(sum(amount) FILTER (WHERE counter = 'requests'), 0) AS requests, max(reports) AS reports
			FROM usage_daily WHERE license_id = $1 AND day BETWEEN $2 AND $3 GROUP BY day, instance_id) d
		GROUP BY day ORDER BY day`, licenseID, from, to)
	if err != nil {
		return bounded(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r UsageCSVRow
		if err := rows.Scan(&r.Day, &r.Tokens, &r.Requests, &r.Reports, &r.Instances); err != nil {
			return err
		}
		r.Day = r.Day.UTC()
		if err := fn(r); err != nil {
			return err
		}
	}
	return bounded(rows.Err())
}
