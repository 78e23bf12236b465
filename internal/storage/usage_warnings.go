package storage

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// UsageMail is one warning mail to send: to one portal user, about one license and
// threshold.
type UsageMail struct {
	LicenseID, Email, CustomerName, SKU string
	Threshold                           int
	Used, Budget                        int64
	Window                              time.Duration
	Attempts                            int
}

// usageMailRetry is how long a claimed mail waits before another sender may try it
// (a sender that died after claiming it, or a failed send).
const usageMailRetry = 5 * time.Minute

// UsageMailAttempts is how many times a warning mail is tried before it is given up
// (its row stays, with the last error, for staff).
const UsageMailAttempts = 10

// ClaimUsageMails claims up to limit unsent warning mails (none claimed in the last
// five minutes), so that replicas don't send the same one: each is sent by the
// claimant, then marked sent. A sender that dies between the send and the mark leaves
// a mail that is sent again five minutes later: mail is at least once (docs/usage.md,
// "Warnings").
func (s *Store) ClaimUsageMails(ctx context.Context, now time.Time, limit int) ([]UsageMail, error) {
	rows, err := s.pool.Query(ctx, `WITH c AS (
			SELECT license_id, threshold, email FROM usage_warning_mails
			WHERE sent_at IS NULL AND attempts < $3 AND (claimed_at IS NULL OR claimed_at < $1::timestamptz - $4::interval)
			ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED),
		u AS (
			UPDATE usage_warning_mails m SET claimed_at = $1, attempts = m.attempts + 1 FROM c
			WHERE m.license_id = c.license_id AND m.threshold = c.threshold AND m.email = c.email
			RETURNING m.license_id, m.threshold, m.email, m.attempts)
		SELECT u.license_id, u.threshold, u.email, u.attempts, w.used, w.budget, cu.name, l.sku,
			(coalesce((l.limits ->> 'usage_window_seconds')::bigint, 0) * interval '1 second')
		FROM u JOIN usage_warnings w ON w.license_id = u.license_id AND w.threshold = u.threshold
			JOIN licenses l ON l.id = u.license_id JOIN customers cu ON cu.id = w.customer_id
		ORDER BY u.license_id, u.threshold, u.email`, now, limit, UsageMailAttempts, usageMailRetry)
	if err != nil {
		return nil, bounded(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (UsageMail, error) {
		var m UsageMail
		err := r.Scan(&m.LicenseID, &m.Threshold, &m.Email, &m.Attempts, &m.Used, &m.Budget, &m.CustomerName, &m.SKU, &m.Window)
		return m, err
	})
}

// MarkUsageMail records the outcome of a claimed mail's send: sent, or the error.
func (s *Store) MarkUsageMail(ctx context.Context, m UsageMail, now time.Time, sendErr error) error {
	var err error
	if sendErr == nil {
		_, err = s.pool.Exec(ctx, `UPDATE usage_warning_mails SET sent_at = $4, last_error = ''
			WHERE license_id = $1 AND threshold = $2 AND email = $3`, m.LicenseID, m.Threshold, m.Email, now)
	} else {
		msg := sendErr.Error()
		if len(msg) > 500 {
			msg = msg[:500]
		}
		_, err = s.pool.Exec(ctx, `UPDATE usage_warning_mails SET last_error = $4
			WHERE license_id = $1 AND threshold = $2 AND email = $3`, m.LicenseID, m.Threshold, m.Email, msg)
	}
	return bounded(err)
}

// RefreshUsageWindows recomputes, for the licenses with a rolling window, what counts
// against their budget at now (days age out of a window without any report), in
// chunks locked in license order like ingestion's, and returns how many it updated.
func (s *Store) RefreshUsageWindows(ctx context.Context, now time.Time) (int, error) {
	total, after := 0, ""
	for {
		var n int
		var last *string
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			// Lock the chunk first, then sum in a statement of its own: under READ
			// COMMITTED it reads after the locks were granted, so a batch that held a
			// row and committed meanwhile is counted, not overwritten with an older sum.
			rows, err := tx.Query(ctx, `SELECT license_id FROM usage_licenses
				WHERE window_seconds > 0 AND license_id > $1 ORDER BY license_id LIMIT 500 FOR UPDATE`, after)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil || len(ids) == 0 {
				return err
			}
			return tx.QueryRow(ctx, `WITH s AS (
					SELECT l.license_id, l.budget, coalesce((SELECT sum(d.amount) FROM usage_daily d
						WHERE d.license_id = l.license_id AND d.counter = 'tokens'
							AND d.day >= ($1::timestamptz - make_interval(secs => l.window_seconds))::date), 0)::bigint AS used
					FROM usage_licenses l WHERE l.license_id = ANY($2)),
				u AS (
					UPDATE usage_licenses x SET used = s.used, used_at = $1,
						permille = CASE WHEN s.budget <= 0 OR s.used <= 0 THEN 0
							ELSE least(10000, floor(s.used::numeric * 1000 / s.budget))::bigint END
					FROM s WHERE x.license_id = s.license_id RETURNING x.license_id)
				SELECT count(*), max(license_id) FROM u`, now, ids).Scan(&n, &last)
		})
		if err != nil {
			return total, err
		}
		total += n
		if last == nil || n < 500 {
			return total, nil
		}
		after = *last
	}
}
