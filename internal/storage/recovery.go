package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// Recover re-applies a published bundle to a database restored from a backup, in
// one transaction: every revocation and suspension the database lacks is applied to
// the license row (revocation is final; a suspension never overrides a revocation),
// entries for licenses the database never had are kept and listed by every later
// bundle, the product's sequence rises above the bundle's, and a lease quarantine
// starts. Each applied change is audited as license.recover, the whole as
// recover.bundle. With DryRun nothing is written and the report says what would be.
func (s *Store) Recover(ctx context.Context, in entitlements.RecoverInput) (*entitlements.RecoverReport, error) {
	rep := &entitlements.RecoverReport{Product: in.Product, Sequence: in.Sequence}
	errDry := errors.New("dry run")
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		*rep = entitlements.RecoverReport{Product: in.Product, Sequence: in.Sequence}
		if err := tx.QueryRow(ctx, `SELECT last_sequence FROM bundle_sequences WHERE product = $1 FOR UPDATE`, in.Product).Scan(&rep.SequenceBefore); err != nil {
			return notFound(err, "product", in.Product)
		}
		listed := map[string]bool{}
		for _, e := range in.Entries {
			listed[e.LicenseID] = true
			r, err := recoverEntry(ctx, tx, in, e)
			if err != nil {
				return err
			}
			rep.Entries = append(rep.Entries, r)
		}
		// Suspensions the database holds that the published bundle, newer than them,
		// no longer lists were probably lifted after the backup: staff decide.
		rows, err := tx.Query(ctx, `SELECT id FROM licenses WHERE product = $1 AND status = 'suspended'
			AND status_changed_at < $2 AND expires_at > now() ORDER BY id`, in.Product, in.IssuedAt)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, id := range ids {
			if !listed[id] {
				rep.Entries = append(rep.Entries, entitlements.RecoveredEntry{LicenseID: id, Status: entitlements.LicenseSuspended,
					Was: entitlements.LicenseSuspended, Outcome: entitlements.RecoveredLiftedMay})
			}
		}
		if err := raiseBundleSequence(ctx, tx, in.Product, in.Sequence, in.IssuedAt); err != nil {
			return err
		}
		rep.SequenceAfter = max(rep.SequenceBefore, in.Sequence)
		if in.DryRun {
			return errDry
		}
		err = tx.QueryRow(ctx, `INSERT INTO recoveries (product, bundle_sequence, bundle_sha256, actor, report)
			VALUES ($1, $2, $3, $4, $5) RETURNING at`, in.Product, in.Sequence, in.SHA256, in.Actor, rep).Scan(&rep.LeaseQuarantineFrom)
		if err != nil {
			return err
		}
		applied, unknown := 0, 0
		for _, e := range rep.Entries {
			switch e.Outcome {
			case entitlements.RecoveredApplied:
				applied++
			case entitlements.RecoveredUnknown:
				unknown++
			}
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: in.Actor, Action: "recover.bundle", Subject: fmt.Sprintf("bundle:%s:%d", in.Product, in.Sequence),
			Details: map[string]string{"product": in.Product, "bundle_sha256": fmt.Sprintf("%x", in.SHA256),
				"applied": fmt.Sprint(applied), "unknown": fmt.Sprint(unknown),
				"sequence_before": fmt.Sprint(rep.SequenceBefore), "sequence_after": fmt.Sprint(rep.SequenceAfter)}})
	})
	if errors.Is(err, errDry) {
		return rep, nil
	}
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// strength orders bundle statuses: a revocation beats a suspension beats a
// supersession.
var strength = map[string]int{entitlements.LicenseSuperseded: 1, entitlements.LicenseSuspended: 2, entitlements.LicenseRevoked: 3}

func recoverEntry(ctx context.Context, tx pgx.Tx, in entitlements.RecoverInput, e entitlements.BundleEntry) (entitlements.RecoveredEntry, error) {
	r := entitlements.RecoveredEntry{LicenseID: e.LicenseID, Status: e.Status}
	var product, status string
	err := tx.QueryRow(ctx, `SELECT product, status FROM licenses WHERE id = $1 FOR UPDATE`, e.LicenseID).Scan(&product, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		r.Outcome = entitlements.RecoveredUnknown
		_, err := tx.Exec(ctx, `INSERT INTO recovered_entries (product, license_id, status, reason, effective_at, superseded_by, bundle_sequence)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (product, license_id) DO UPDATE SET status = excluded.status, reason = excluded.reason,
				effective_at = excluded.effective_at, superseded_by = excluded.superseded_by, bundle_sequence = excluded.bundle_sequence
			WHERE recovered_entries.bundle_sequence < excluded.bundle_sequence OR recovered_entries.status <> 'revoked'`,
			in.Product, e.LicenseID, e.Status, e.Reason, e.EffectiveAt, e.SupersededBy, in.Sequence)
		return r, err
	}
	if err != nil {
		return r, err
	}
	r.Was = status
	switch {
	case product != in.Product:
		r.Outcome = entitlements.RecoveredForeign
		return r, nil
	case status == e.Status || strength[status] > strength[e.Status]:
		r.Outcome = entitlements.RecoveredAlready
		return r, nil
	case e.Status == entitlements.LicenseSuperseded:
		// The database has no successor for it (issued after the backup): the public
		// supersession stays listed, as a recovered entry, while the row is active.
		r.Outcome = entitlements.RecoveredUnknown
		_, err := tx.Exec(ctx, `INSERT INTO recovered_entries (product, license_id, status, reason, effective_at, superseded_by, bundle_sequence)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (product, license_id) DO NOTHING`,
			in.Product, e.LicenseID, e.Status, e.Reason, e.EffectiveAt, e.SupersededBy, in.Sequence)
		return r, err
	}
	r.Outcome = entitlements.RecoveredApplied
	reason := truncate("recovered from bundle: "+e.Reason, 200)
	if _, err := tx.Exec(ctx, `UPDATE licenses SET status = $2, status_reason = $3, status_changed_at = now(),
		status_changed_by = $4, status_effective_at = $5 WHERE id = $1`, e.LicenseID, e.Status, reason, in.Actor, e.EffectiveAt); err != nil {
		return r, err
	}
	return r, appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: in.Actor, Action: "license.recover", Subject: e.LicenseID,
		Details: map[string]string{"from": status, "to": e.Status, "reason": reason, "bundle": fmt.Sprintf("%s:%d", in.Product, in.Sequence),
			"effective_at": e.EffectiveAt.UTC().Format(time.RFC3339)}})
}
