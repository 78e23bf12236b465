package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

const (
	portalUserCols     = `id, customer_id, email, name, created_at, created_by, disabled_at, last_sign_in_at`
	errCustomerScope   = "storage: a customer-scoped call without a customer"
	customerTokenBytes = 32
)

func scanPortalUser(r pgx.Row) (*entitlements.PortalUser, error) {
	u := &entitlements.PortalUser{}
	err := r.Scan(&u.ID, &u.CustomerID, &u.Email, &u.Name, &u.CreatedAt, &u.CreatedBy, &u.DisabledAt, &u.LastSignIn)
	return u, err
}

// newSecret returns a random 32-byte token (base64url, with prefix) and its SHA-256,
// the only form stored.
func newSecret(prefix string) (string, []byte, error) {
	raw := make([]byte, customerTokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, err
	}
	tok := prefix + base64.RawURLEncoding.EncodeToString(raw)
	return tok, HashSecret(tok), nil
}

// HashSecret is how a presented sign-in link, session or customer token is looked up.
func HashSecret(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// CreatePortalUser invites a person of a customer to the portal, with its audit event.
// An address that already has a portal account (of any customer) is a conflict.
func (s *Store) CreatePortalUser(ctx context.Context, customerID, email, name, actor string) (*entitlements.PortalUser, error) {
	email, name, err := entitlements.ValidatePortalUser(email, name)
	if err != nil {
		return nil, err
	}
	var u *entitlements.PortalUser
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := getCustomer(ctx, tx, customerID); err != nil {
			return err
		}
		var err error
		u, err = scanPortalUser(tx.QueryRow(ctx, `INSERT INTO portal_users (customer_id, email, name, created_by)
			VALUES ($1, $2, $3, $4) RETURNING `+portalUserCols, customerID, email, name, actor))
		if isUniqueViolation(err, "") {
			return entitlements.Errorf(entitlements.ECONFLICT, "%s already has a portal account", email)
		}
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "portal_user.invite", Subject: customerID,
			Details: map[string]string{"email": email}})
	})
	return u, err
}

// ListPortalUsers returns a customer's portal users, oldest first.
func (s *Store) ListPortalUsers(ctx context.Context, customerID string) ([]*entitlements.PortalUser, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+portalUserCols+` FROM portal_users WHERE customer_id = $1 ORDER BY id`, customerID)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.PortalUser, error) { return scanPortalUser(r) })
}

// SetPortalUserDisabled disables (or enables) a portal user of a customer; disabling
// ends every session of that user at once.
func (s *Store) SetPortalUserDisabled(ctx context.Context, customerID string, id int64, disabled bool, actor string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var email string
		err := tx.QueryRow(ctx, `UPDATE portal_users SET disabled_at = CASE WHEN $3 THEN now() END
			WHERE id = $1 AND customer_id = $2 RETURNING email`, id, customerID, disabled).Scan(&email)
		if err != nil {
			return notFound(err, "portal user", email)
		}
		if disabled {
			if _, err := tx.Exec(ctx, `DELETE FROM portal_sessions WHERE portal_user_id = $1`, id); err != nil {
				return err
			}
		}
		action := "portal_user.enable"
		if disabled {
			action = "portal_user.disable"
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: action, Subject: customerID, Details: map[string]string{"email": email}})
	})
}

// CreateSignInLink makes a one-time sign-in link token for an enabled portal user's
// address. An unknown or disabled address is ErrNotFound: the caller answers both
// alike, so the portal never says which addresses have accounts.
func (s *Store) CreateSignInLink(ctx context.Context, email string) (string, *entitlements.PortalUser, error) {
	u, err := scanPortalUser(s.pool.QueryRow(ctx, `SELECT `+portalUserCols+` FROM portal_users
		WHERE email = lower($1) AND disabled_at IS NULL`, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, entitlements.ErrNotFound
	}
	if err != nil {
		return "", nil, unavailable(err)
	}
	tok, hash, err := newSecret("")
	if err != nil {
		return "", nil, err
	}
	// Sweep what has expired while we are here: links, and sessions past either
	// lifetime.
	_, err = s.pool.Exec(ctx, `WITH l AS (INSERT INTO portal_sign_in_links (token_hash, portal_user_id, expires_at)
			VALUES ($1, $2, now() + $3::interval)),
		d1 AS (DELETE FROM portal_sign_in_links WHERE expires_at < now() - interval '1 day'),
		d2 AS (DELETE FROM portal_sessions WHERE expires_at < now() OR last_seen_at < now() - $4::interval)
		SELECT 1`, hash, u.ID, entitlements.SignInLinkTTL.String(), entitlements.PortalIdleTTL.String())
	if err != nil {
		return "", nil, unavailable(err)
	}
	return tok, u, nil
}

// PeekSignInLink says whose a sign-in link is, if it can still be used, without using
// it (the page that asks the person to confirm; mail scanners that follow links then
// can't spend it).
func (s *Store) PeekSignInLink(ctx context.Context, token string) (*entitlements.PortalUser, error) {
	u, err := scanPortalUser(s.pool.QueryRow(ctx, `SELECT `+prefixed("u.", portalUserCols)+` FROM portal_sign_in_links l
		JOIN portal_users u ON u.id = l.portal_user_id
		WHERE l.token_hash = $1 AND l.used_at IS NULL AND l.expires_at > now() AND u.disabled_at IS NULL`, HashSecret(token)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errLinkUnusable
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return u, nil
}

var errLinkUnusable = entitlements.Errorf(entitlements.EUNAUTHORIZED,
	"this sign-in link has expired or was already used: ask for a new one")

// UseSignInLink spends a one-time link (single use: the update that marks it used is
// the check) and opens a new portal session for its user; it returns the session
// token for the cookie.
func (s *Store) UseSignInLink(ctx context.Context, token, addr string) (string, *entitlements.PortalUser, error) {
	sess, hash, err := newSecret("")
	if err != nil {
		return "", nil, err
	}
	var u *entitlements.PortalUser
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var uid int64
		err := tx.QueryRow(ctx, `UPDATE portal_sign_in_links SET used_at = now()
			WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING portal_user_id`, HashSecret(token)).Scan(&uid)
		if errors.Is(err, pgx.ErrNoRows) {
			return errLinkUnusable
		}
		if err != nil {
			return err
		}
		u, err = scanPortalUser(tx.QueryRow(ctx, `UPDATE portal_users SET last_sign_in_at = now()
			WHERE id = $1 AND disabled_at IS NULL RETURNING `+portalUserCols, uid))
		if errors.Is(err, pgx.ErrNoRows) {
			return errLinkUnusable
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO portal_sessions (token_hash, portal_user_id, customer_id, expires_at)
			VALUES ($1, $2, $3, now() + $4::interval)`, hash, u.ID, u.CustomerID, entitlements.PortalAbsoluteTTL.String()); err != nil {
			return err
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: "portal:" + u.Email, Action: "portal.sign_in", Subject: u.CustomerID,
			Details: map[string]string{"client_addr": addr}})
	})
	if err != nil {
		return "", nil, err
	}
	return sess, u, nil
}

// PortalSession returns the portal user of a live session and touches it; a session
// past its absolute or idle lifetime, or of a disabled user, is unauthorized.
func (s *Store) PortalSession(ctx context.Context, token string) (*entitlements.PortalUser, error) {
	u, err := scanPortalUser(s.pool.QueryRow(ctx, `UPDATE portal_sessions ps SET last_seen_at = now()
		FROM portal_users u
		WHERE ps.token_hash = $1 AND ps.expires_at > now() AND ps.last_seen_at > now() - $2::interval
		  AND u.id = ps.portal_user_id AND u.disabled_at IS NULL
		RETURNING `+prefixed("u.", portalUserCols), HashSecret(token), entitlements.PortalIdleTTL.String()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, entitlements.Errorf(entitlements.EUNAUTHORIZED, "sign in to the portal")
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return u, nil
}

// EndPortalSession deletes a session (sign-out), with its audit event.
func (s *Store) EndPortalSession(ctx context.Context, token string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var email, customer string
		err := tx.QueryRow(ctx, `DELETE FROM portal_sessions ps USING portal_users u WHERE ps.token_hash = $1 AND u.id = ps.portal_user_id
			RETURNING u.email, ps.customer_id`, HashSecret(token)).Scan(&email, &customer)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: "portal:" + email, Action: "portal.sign_out", Subject: customer})
	})
}
