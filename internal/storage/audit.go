package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/jackc/pgx/v5"
	"github.com/metrum/licensing/internal/entitlements"
)

// auditLock serialises appends so each event chains to the one before it.
const auditLock = 0x6d65747275_6d01 // "metrum" + 1

// genesis is the prev_hash of the first event.
var genesis = make([]byte, sha256.Size)

// chainHash is SHA-256(prev_hash ‖ JSON [at, actor, action, subject, details]) with
// details' keys sorted, so the hash can be recomputed from the stored row.
func chainHash(prev []byte, e *entitlements.AuditEvent) []byte {
	body, _ := json.Marshal([]any{e.At.UTC().Format(time.RFC3339Nano), e.Actor, e.Action, e.Subject, e.Details}, json.Deterministic(true))
	h := sha256.New()
	h.Write(prev)
	h.Write(body)
	return h.Sum(nil)
}

// appendAudit adds an event in tx, chained to the last one.
func appendAudit(ctx context.Context, tx pgx.Tx, e *entitlements.AuditEvent) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(auditLock)); err != nil {
		return fmt.Errorf("storage: audit lock: %w", err)
	}
	prev := genesis
	err := tx.QueryRow(ctx, `SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1`).Scan(&prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("storage: audit head: %w", err)
	}
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	e.At = time.Now().UTC().Truncate(time.Microsecond) // Postgres keeps microseconds
	e.Hash = chainHash(prev, e)
	err = tx.QueryRow(ctx, `
		INSERT INTO audit_events (at, actor, action, subject, details, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		e.At, e.Actor, e.Action, e.Subject, e.Details, prev, e.Hash).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("storage: audit append: %w", err)
	}
	return nil
}

// Audit appends one event in its own transaction (for actions with no other write).
func (s *Store) Audit(ctx context.Context, e *entitlements.AuditEvent) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return appendAudit(ctx, tx, e) })
}

// ListAudit returns events, newest first.
func (s *Store) ListAudit(ctx context.Context, f entitlements.AuditFilter) ([]*entitlements.AuditEvent, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, at, actor, action, subject, details, hash FROM audit_events
		WHERE ($1 = '' OR subject = $1) AND ($2::bigint = 0 OR id < $2) AND ($4 = '' OR actor = $4) AND ($5 = '' OR action = $5)
		  AND ($6::timestamptz IS NULL OR at >= $6)
		ORDER BY id DESC LIMIT $3`, f.Subject, f.BeforeID, f.Limit, f.Actor, f.Action, optionalTime(f.Since))
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.AuditEvent, error) {
		e := &entitlements.AuditEvent{}
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Subject, &e.Details, &e.Hash)
		return e, err
	})
}

// VerifyAudit walks the whole chain in ID order and names the first broken link.
func (s *Store) VerifyAudit(ctx context.Context, progress func(n int64)) (*entitlements.ChainReport, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, at, actor, action, subject, details, prev_hash, hash FROM audit_events ORDER BY id`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	rep := &entitlements.ChainReport{}
	prev := genesis
	for rows.Next() {
		var e entitlements.AuditEvent
		var storedPrev []byte
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Subject, &e.Details, &storedPrev, &e.Hash); err != nil {
			return nil, err
		}
		rep.Events++
		if progress != nil && rep.Events%10000 == 0 {
			progress(rep.Events)
		}
		if rep.BrokenAt != 0 {
			continue
		}
		switch {
		case !bytes.Equal(storedPrev, prev):
			rep.BrokenAt, rep.Why = e.ID, "prev_hash does not match the previous event's hash (an event was removed or reordered)"
		case !bytes.Equal(chainHash(prev, &e), e.Hash):
			rep.BrokenAt, rep.Why = e.ID, "content does not match its hash (the event was edited)"
		}
		prev = e.Hash
	}
	return rep, rows.Err()
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
