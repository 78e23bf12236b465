package storage

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// CreateJob records a bulk job and every entitlement it will issue, in order, before
// any work: whatever happens to the stream or the issuer afterwards, the job knows
// what it set out to do. j.StartedAt is the issuer's clock (the one licenses'
// issued_at is on).
func (s *Store) CreateJob(ctx context.Context, j *entitlements.BulkJob, entitlementIDs []string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO bulk_jobs (id, kind, actor, started_at, total) VALUES ($1, $2, $3, $4, $5)`,
			j.ID, j.Kind, j.Actor, j.StartedAt, len(entitlementIDs)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO bulk_job_items (job_id, n, entitlement_id)
			SELECT $1, u.n, u.e FROM unnest($2::text[]) WITH ORDINALITY AS u(e, n)`, j.ID, entitlementIDs)
		return err
	})
}

// RecordJobItem records item n's outcome: the license issued (or the error), and
// whether the stream line carrying its lease token was written.
func (s *Store) RecordJobItem(ctx context.Context, jobID string, n int, licenseID, errText string, tokenWritten bool) error {
	_, err := s.pool.Exec(ctx, `UPDATE bulk_job_items SET license_id = nullif($3, ''), error = nullif($4, ''),
		lease_token_written = $5, done_at = clock_timestamp() WHERE job_id = $1 AND n = $2`, jobID, n, licenseID, errText, tokenWritten)
	return unavailable(err)
}

// FinishJob marks a job done.
func (s *Store) FinishJob(ctx context.Context, jobID string) error {
	_, err := s.pool.Exec(ctx, `UPDATE bulk_jobs SET finished_at = clock_timestamp() WHERE id = $1`, jobID)
	return unavailable(err)
}

// GetJob returns a job and its items. An item with no license recorded (not
// recorded at all: the issuer stopped first; or failed with an unknown outcome) gets
// the license its entitlement has, if any (entitlement_id is unique among licenses),
// and its token counts as never delivered.
func (s *Store) GetJob(ctx context.Context, id string) (*entitlements.BulkJob, error) {
	j := &entitlements.BulkJob{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT kind, actor, started_at, finished_at FROM bulk_jobs WHERE id = $1`, id).
		Scan(&j.Kind, &j.Actor, &j.StartedAt, &j.FinishedAt)
	if err != nil {
		return nil, unavailable(notFound(err, "job", id))
	}
	rows, err := s.pool.Query(ctx, `SELECT i.n, i.entitlement_id, coalesce(i.license_id, l.id, ''), coalesce(i.error, ''),
			coalesce(r.lease_ttl_seconds, 0) > 0, i.lease_token_written, i.done_at IS NOT NULL
		FROM bulk_job_items i
		LEFT JOIN licenses l ON i.license_id IS NULL AND l.entitlement_id = i.entitlement_id
		LEFT JOIN licenses r ON r.id = coalesce(i.license_id, l.id)
		WHERE i.job_id = $1 ORDER BY i.n`, id)
	if err != nil {
		return nil, unavailable(err)
	}
	j.Items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (entitlements.BulkJobItem, error) {
		var it entitlements.BulkJobItem
		err := r.Scan(&it.N, &it.EntitlementID, &it.LicenseID, &it.Error, &it.LeaseRequired, &it.TokenWritten, &it.Recorded)
		return it, err
	})
	return j, unavailable(err)
}

// PruneJobs deletes the jobs started before t, with their items.
func (s *Store) PruneJobs(ctx context.Context, before time.Time) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM bulk_jobs WHERE started_at < $1`, before)
	return unavailable(err)
}
