package storage

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

const customerTokenCols = `id, customer_id, name, created_at, created_by, expires_at, last_used_at, revoked_at`

func scanCustomerToken(r pgx.Row) (*entitlements.CustomerToken, error) {
	t := &entitlements.CustomerToken{}
	return t, r.Scan(&t.ID, &t.CustomerID, &t.Name, &t.CreatedAt, &t.CreatedBy, &t.ExpiresAt, &t.LastUsedAt, &t.RevokedAt)
}

// CreateCustomerToken makes a customer API token for a customer and returns it once;
// only its hash is stored.
func (s *Store) CreateCustomerToken(ctx context.Context, customerID, name string, expiresAt *time.Time, actor string, portalUserID int64) (string, *entitlements.CustomerToken, error) {
	if customerID == "" {
		return "", nil, errors.New(errCustomerScope)
	}
	f := map[string]string{}
	if name == "" || len(name) > 100 {
		f["name"] = "a name of 1 to 100 characters (what the token is for)"
	}
	if expiresAt != nil && !expiresAt.After(time.Now()) {
		f["expires_at"] = "must be in the future"
	}
	if err := entitlements.Invalid(f); err != nil {
		return "", nil, err
	}
	tok, hash, err := newSecret(entitlements.CustomerTokenPrefix)
	if err != nil {
		return "", nil, err
	}
	var t *entitlements.CustomerToken
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := getCustomer(ctx, tx, customerID); err != nil {
			return err
		}
		var err error
		var owner *int64
		if portalUserID != 0 {
			owner = &portalUserID
		}
		t, err = scanCustomerToken(tx.QueryRow(ctx, `INSERT INTO customer_tokens (id, customer_id, name, token_hash, created_by, expires_at, portal_user_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+customerTokenCols,
			entitlements.NewID(entitlements.PrefixCustomerToken), customerID, name, hash, actor, expiresAt, owner))
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "customer_token.create", Subject: customerID,
			Details: map[string]string{"token_id": t.ID, "name": name}})
	})
	if err != nil {
		return "", nil, err
	}
	return tok, t, nil
}

// ListCustomerTokens returns a customer's tokens (never the tokens themselves), newest
// first.
func (s *Store) ListCustomerTokens(ctx context.Context, customerID string) ([]*entitlements.CustomerToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+customerTokenCols+` FROM customer_tokens WHERE customer_id = $1
		ORDER BY created_at DESC, id DESC LIMIT 500`, customerID)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.CustomerToken, error) { return scanCustomerToken(r) })
}

// RevokeCustomerToken revokes one of a customer's tokens; it stops working at once. A
// token of another customer is not found, exactly like one that does not exist.
func (s *Store) RevokeCustomerToken(ctx context.Context, customerID, id, actor string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var revoked bool
		err := tx.QueryRow(ctx, `UPDATE customer_tokens SET revoked_at = coalesce(revoked_at, now())
			WHERE id = $1 AND customer_id = $2 RETURNING revoked_at < now()`, id, customerID).Scan(&revoked)
		if err != nil {
			return notFound(err, "token", id)
		}
		if revoked {
			return nil // already revoked: idempotent
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "customer_token.revoke", Subject: customerID,
			Details: map[string]string{"token_id": id}})
	})
}

// AuthenticateCustomerToken returns the record of a live token by its presented value
// (and marks it used). Unknown, expired and revoked tokens get one answer.
func (s *Store) AuthenticateCustomerToken(ctx context.Context, token string) (*entitlements.CustomerToken, error) {
	// A token made by a portal user works only while that user is enabled.
	t, err := scanCustomerToken(s.pool.QueryRow(ctx, `UPDATE customer_tokens SET last_used_at = now()
		WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
			AND (portal_user_id IS NULL OR EXISTS (SELECT 1 FROM portal_users u WHERE u.id = portal_user_id AND u.disabled_at IS NULL))
		RETURNING `+customerTokenCols, HashSecret(token)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, entitlements.ErrBadCustomerToken
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return t, nil
}

// RenewCustomerToken moves a live token's expiry to expiresAt (never earlier than it
// is), audited; a revoked or another customer's token is not found.
func (s *Store) RenewCustomerToken(ctx context.Context, customerID, id string, expiresAt time.Time, actor string) (*entitlements.CustomerToken, error) {
	var t *entitlements.CustomerToken
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		t, err = scanCustomerToken(tx.QueryRow(ctx, `UPDATE customer_tokens SET expires_at = greatest(expires_at, $3)
			WHERE id = $1 AND customer_id = $2 AND revoked_at IS NULL AND expires_at IS NOT NULL RETURNING `+customerTokenCols,
			id, customerID, expiresAt))
		if err != nil {
			return notFound(err, "token", id)
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "customer_token.renew", Subject: customerID,
			Details: map[string]string{"token_id": id, "expires_at": t.ExpiresAt.UTC().Format(time.RFC3339)}})
	})
	return t, err
}
