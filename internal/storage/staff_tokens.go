package storage

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

const staffTokenCols = `t.id, t.staff_id, u.email, t.name, t.created_at, t.expires_at, t.last_used_at, t.revoked_at`

func scanStaffToken(r pgx.Row) (*entitlements.StaffToken, error) {
	t := &entitlements.StaffToken{}
	return t, r.Scan(&t.ID, &t.StaffID, &t.Email, &t.Name, &t.CreatedAt, &t.ExpiresAt, &t.LastUsedAt, &t.RevokedAt)
}

// CreateStaffToken makes a personal access token for a staff member and returns it
// once, with its audit event.
func (s *Store) CreateStaffToken(ctx context.Context, staffID int64, name string, expiresAt time.Time, actor string) (string, *entitlements.StaffToken, error) {
	tok, hash, err := newSecret(entitlements.StaffTokenPrefix)
	if err != nil {
		return "", nil, err
	}
	var t *entitlements.StaffToken
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		t, err = scanStaffToken(tx.QueryRow(ctx, `WITH t AS (INSERT INTO staff_tokens (id, staff_id, name, token_hash, expires_at)
			VALUES ($1, $2, $3, $4, $5) RETURNING *) SELECT `+staffTokenCols+` FROM t JOIN staff_users u ON u.id = t.staff_id`,
			entitlements.NewID("stk_"), staffID, name, hash, expiresAt))
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "staff_token.create", Subject: t.Email,
			Details: map[string]string{"token_id": t.ID, "name": name, "expires_at": expiresAt.UTC().Format(time.RFC3339)}})
	})
	if err != nil {
		return "", nil, err
	}
	return tok, t, nil
}

// ListStaffTokens returns a staff member's tokens, newest first.
func (s *Store) ListStaffTokens(ctx context.Context, staffID int64) ([]*entitlements.StaffToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+staffTokenCols+` FROM staff_tokens t JOIN staff_users u ON u.id = t.staff_id
		WHERE t.staff_id = $1 ORDER BY t.created_at DESC LIMIT 500`, staffID)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.StaffToken, error) { return scanStaffToken(r) })
}

// RevokeStaffToken revokes a token of a staff member (ownerID 0: any owner, for
// admins); it stops working at once.
func (s *Store) RevokeStaffToken(ctx context.Context, ownerID int64, id, actor string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var email string
		err := tx.QueryRow(ctx, `UPDATE staff_tokens t SET revoked_at = coalesce(t.revoked_at, now()) FROM staff_users u
			WHERE t.id = $1 AND ($2::bigint = 0 OR t.staff_id = $2) AND u.id = t.staff_id RETURNING u.email`, id, ownerID).Scan(&email)
		if err != nil {
			return notFound(err, "token", id)
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "staff_token.revoke", Subject: email, Details: map[string]string{"token_id": id}})
	})
}

// AuthenticateStaffToken returns the staff member of a live token (and marks it used).
// Unknown, expired and revoked tokens, and tokens of disabled accounts, get one answer.
func (s *Store) AuthenticateStaffToken(ctx context.Context, token string) (*entitlements.Staff, string, error) {
	st := &entitlements.Staff{}
	var id string
	err := s.pool.QueryRow(ctx, `UPDATE staff_tokens t SET last_used_at = now() FROM staff_users u
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now() AND u.id = t.staff_id AND u.disabled_at IS NULL
		RETURNING t.id, u.id, u.email, u.name, u.role, u.created_at`, HashSecret(token)).Scan(&id, &st.ID, &st.Email, &st.Name, &st.Role, &st.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", entitlements.ErrBadStaffToken
	}
	if err != nil {
		return nil, "", unavailable(err)
	}
	return st, id, nil
}
