package storage

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/metrum/licensing/internal/entitlements"
)

// BundleInput is what signing a bundle needs: its sequence, times and entries.
type BundleInput struct {
	Product   string
	Sequence  int64
	IssuedAt  time.Time
	ExpiresAt time.Time
	Entries   []entitlements.BundleEntry
}

// SignedBundle is a signed bundle file.
type SignedBundle struct {
	File          []byte
	PayloadSHA256 []byte
	KeyID         string
}

// SignBundleFunc signs a bundle; it runs in the publishing transaction.
type SignBundleFunc func(in BundleInput) (*SignedBundle, error)

// PublishOptions control one publish.
type PublishOptions struct {
	Product string
	TTL     time.Duration
	// Retention: entries for licenses that expired longer ago than this are pruned
	// (an expired license fails on its own).
	Retention time.Duration
	Actor     string
	Reason    string // changed, scheduled, manual
	// OnlyIfDue publishes only when the product has no bundle yet, its revocation
	// list changed since the latest one, or the latest has less than half its TTL
	// left. Publishing when not due returns ErrNotDue and writes nothing.
	OnlyIfDue bool
}

// ErrNotDue: a publish asked only if due found nothing due.
var ErrNotDue = errors.New("storage: no revocation bundle is due")

// PublishBundle takes the product's next sequence and stores a signed bundle in one
// transaction. The product's counter row lock serialises its publishes across
// replicas, and a failed publish takes no number.
//
// The sequence is the larger of the last one plus one and the database clock in Unix
// milliseconds, read after the lock; when the clock has not yet passed the last
// sequence (two publishes in one millisecond) the publish waits for it. So a sequence
// is never above the millisecond it was published in, and a database restored from a
// backup publishes above everything the lost interval published, without knowing
// what it lost (formats.md v1.2; docs/operations.md). issued_at is read after the
// lock too, and never goes behind the last bundle's: a higher sequence never carries
// an earlier time.
func (s *Store) PublishBundle(ctx context.Context, o PublishOptions, sign SignBundleFunc) (*entitlements.Bundle, error) {
	var out *entitlements.Bundle
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		seq, now, version, err := nextBundleSequence(ctx, tx, o.Product)
		if err != nil {
			return err
		}
		if o.OnlyIfDue {
			due, reason, err := bundleDue(ctx, tx, o.Product, version, now, o.TTL)
			if err != nil {
				return err
			}
			if !due {
				return ErrNotDue
			}
			o.Reason = reason
		}
		entries, err := bundleEntries(ctx, tx, o.Product, now.Add(-o.Retention))
		if err != nil {
			return err
		}
		in := BundleInput{Product: o.Product, Sequence: seq, IssuedAt: now, ExpiresAt: now.Add(o.TTL), Entries: entries}
		signed, err := sign(in)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(signed.File)
		b := &entitlements.Bundle{Sequence: in.Sequence, Product: o.Product, IssuedAt: in.IssuedAt, ExpiresAt: in.ExpiresAt,
			KeyID: signed.KeyID, Entries: len(entries), SourceVersion: version, Reason: o.Reason, File: signed.File,
			FileSHA256: sum[:], PayloadSHA256: signed.PayloadSHA256, CreatedBy: o.Actor}
		_, err = tx.Exec(ctx, `INSERT INTO revocation_bundles (sequence, product, issued_at, expires_at, key_id, entries,
			source_version, reason, file_bytes, file_sha256, payload_sha256, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			b.Sequence, b.Product, b.IssuedAt, b.ExpiresAt, b.KeyID, b.Entries, b.SourceVersion, b.Reason, b.File,
			b.FileSHA256, b.PayloadSHA256, b.CreatedBy)
		if err != nil {
			return fmt.Errorf("storage: insert bundle: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE bundle_sequences SET last_sequence = $2, last_issued_at = $3 WHERE product = $1`,
			b.Product, b.Sequence, b.IssuedAt); err != nil {
			return err
		}
		out = b
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: o.Actor, Action: "bundle.publish", Subject: fmt.Sprintf("bundle:%s:%d", b.Product, b.Sequence),
			Details: map[string]string{"product": b.Product, "entries": fmt.Sprint(b.Entries), "reason": b.Reason,
				"key_id": b.KeyID, "expires_at": b.ExpiresAt.UTC().Format(time.RFC3339), "file_sha256": fmt.Sprintf("%x", b.FileSHA256)}})
	})
	return out, err
}

// maxSequenceWait bounds how long a publish waits for the clock to pass the last
// sequence. Beyond a few milliseconds the last sequence is ahead of the clock for
// another reason (the clock was set back, or a recovery raised the floor above it):
// the publish then takes last + 1, which still never reuses a number.
const maxSequenceWait = 20 * time.Millisecond

// nextBundleSequence locks a product's counter and returns the sequence and time of
// its next bundle, and the product's revocation version, all read after the lock.
func nextBundleSequence(ctx context.Context, tx pgx.Tx, product string) (seq int64, now time.Time, version int64, err error) {
	var last int64
	var lastIssued *time.Time
	err = tx.QueryRow(ctx, `SELECT s.last_sequence, s.last_issued_at, p.revocation_version
		FROM products p JOIN bundle_sequences s ON s.product = p.id WHERE p.id = $1 FOR UPDATE OF s`, product).Scan(&last, &lastIssued, &version)
	if err != nil {
		return 0, time.Time{}, 0, notFound(err, "product", product)
	}
	deadline := time.Now().Add(maxSequenceWait)
	for {
		var ms int64
		if err := tx.QueryRow(ctx, `SELECT date_trunc('second', clock_timestamp()), floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint`).Scan(&now, &ms); err != nil {
			return 0, time.Time{}, 0, err
		}
		if ms > last {
			seq = ms
			break
		}
		if time.Now().After(deadline) {
			seq = last + 1
			break
		}
		time.Sleep(time.Millisecond)
	}
	if lastIssued != nil && now.Before(*lastIssued) {
		now = *lastIssued
	}
	return seq, now, version, nil
}

// RaiseBundleSequence moves a product's counter up to at least floor (a sequence seen
// in a published bundle); it never lowers it. Recovery after a restore uses it.
func raiseBundleSequence(ctx context.Context, tx pgx.Tx, product string, floor int64, issuedAt time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE bundle_sequences SET last_sequence = greatest(last_sequence, $2),
		last_issued_at = greatest(last_issued_at, $3) WHERE product = $1`, product, floor, issuedAt)
	return err
}

// bundleDue decides whether the scheduler must publish for a product now.
func bundleDue(ctx context.Context, tx pgx.Tx, product string, version int64, now time.Time, ttl time.Duration) (bool, string, error) {
	var srcVersion int64
	var expires time.Time
	err := tx.QueryRow(ctx, `SELECT source_version, expires_at FROM revocation_bundles WHERE product = $1
		ORDER BY sequence DESC LIMIT 1`, product).Scan(&srcVersion, &expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return true, "scheduled", nil
	case err != nil:
		return false, "", err
	case srcVersion != version:
		return true, "changed", nil
	case expires.Sub(now) < ttl/2:
		return true, "scheduled", nil
	}
	return false, "", nil
}

// bundleEntries lists a product's revoked, suspended and superseded licenses, except
// those that expired before pruneBefore.
func bundleEntries(ctx context.Context, tx pgx.Tx, product string, pruneBefore time.Time) ([]entitlements.BundleEntry, error) {
	// Recovered entries are what a published bundle showed of licenses this database
	// never had (issued after the backup it was restored from), or of a supersession by
	// such a license: they stay listed, their expiry unknown, while the row (if any)
	// says nothing stronger.
	rows, err := tx.Query(ctx, `SELECT id, status, reason, effective_at, superseded_by FROM (
		SELECT id, status, status_reason AS reason, status_effective_at AS effective_at, coalesce(superseded_by, '') AS superseded_by
		FROM licenses WHERE product = $1 AND status <> 'active' AND expires_at >= $2
		UNION ALL
		SELECT r.license_id, r.status, r.reason, r.effective_at, r.superseded_by FROM recovered_entries r
		WHERE r.product = $1 AND NOT EXISTS (SELECT 1 FROM licenses l WHERE l.id = r.license_id AND l.status <> 'active')) e
		ORDER BY id COLLATE "C"`, product, pruneBefore)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (entitlements.BundleEntry, error) {
		var e entitlements.BundleEntry
		err := r.Scan(&e.LicenseID, &e.Status, &e.Reason, &e.EffectiveAt, &e.SupersededBy)
		return e, err
	})
}

const bundleCols = `sequence, product, issued_at, expires_at, key_id, entries, source_version, reason, file_sha256, payload_sha256, created_by`

func scanBundle(r pgx.Row, extra ...any) (*entitlements.Bundle, error) {
	b := &entitlements.Bundle{}
	err := r.Scan(append([]any{&b.Sequence, &b.Product, &b.IssuedAt, &b.ExpiresAt, &b.KeyID, &b.Entries, &b.SourceVersion,
		&b.Reason, &b.FileSHA256, &b.PayloadSHA256, &b.CreatedBy}, extra...)...)
	return b, err
}

// GetBundle returns a published bundle with its bytes; sequence 0 is the product's
// latest.
func (s *Store) GetBundle(ctx context.Context, product string, sequence int64) (*entitlements.Bundle, error) {
	var file []byte
	b, err := scanBundle(s.pool.QueryRow(ctx, `SELECT `+bundleCols+`, file_bytes FROM revocation_bundles
		WHERE product = $1 AND ($2::bigint = 0 OR sequence = $2) ORDER BY sequence DESC LIMIT 1`, product, sequence), &file)
	if err != nil {
		if sequence == 0 {
			return nil, notFound(err, "revocation bundle for", product)
		}
		return nil, notFound(err, "revocation bundle", fmt.Sprintf("%s #%d", product, sequence))
	}
	b.File = file
	return b, nil
}

// ListBundles returns a product's bundles newest first, without bytes; before pages.
func (s *Store) ListBundles(ctx context.Context, product string, before int64, limit int) ([]*entitlements.Bundle, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	rows, err := s.pool.Query(ctx, `SELECT `+bundleCols+` FROM revocation_bundles
		WHERE ($1 = '' OR product = $1) AND ($2::bigint = 0 OR sequence < $2) ORDER BY sequence DESC LIMIT $3`, product, before, limit)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.Bundle, error) { return scanBundle(r) })
}

// LastBundleSequence is the last sequence a product's bundles used (0: none yet).
func (s *Store) LastBundleSequence(ctx context.Context, product string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT last_sequence FROM bundle_sequences WHERE product = $1`, product).Scan(&n)
	if err != nil {
		return 0, notFound(err, "product", product)
	}
	return n, nil
}
