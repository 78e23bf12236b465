package storage

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// argonParams follow the OWASP recommendation for argon2id (19 MiB, 2 passes) with
// one lane: the machine has few cores and logins are rare.
var argonParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// CreateStaff adds a staff account with an argon2id password hash; the account was
// validated by the caller (entitlements.ValidateNewStaff), which also says whether its
// first password must be changed at the first sign-in (st.MustChangePassword).
func (s *Store) CreateStaff(ctx context.Context, st *entitlements.Staff, password, actor string) error {
	hash, err := argon2id.CreateHash(password, argonParams)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if actor == entitlements.BootstrapActor {
			// The first account: only while there is none. The table lock makes two
			// concurrent bootstraps take turns, so the second sees the first's row.
			if _, err := tx.Exec(ctx, `LOCK TABLE staff_users IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM staff_users`).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return entitlements.Errorf(entitlements.EFORBIDDEN, "staff accounts exist already: an admin creates further ones (--as)")
			}
		}
		err := tx.QueryRow(ctx, `INSERT INTO staff_users (email, name, role, password_hash, must_change_password) VALUES ($1, $2, $3, $4, $5)
			RETURNING id, created_at`, st.Email, st.Name, st.Role, hash, st.MustChangePassword).Scan(&st.ID, &st.CreatedAt)
		if isUniqueViolation(err, "") {
			return entitlements.Errorf(entitlements.ECONFLICT, "a staff account for %s exists", st.Email)
		}
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "staff.create", Subject: st.Email, Details: map[string]string{"role": string(st.Role)}})
	})
}

// dummyHash is compared against when the email is unknown, so a login takes as long
// for an unknown account as for a wrong password.
var dummyHash, _ = argon2id.CreateHash("not-a-real-password", argonParams)

// Authenticate checks an email and password. Unknown email, wrong password and a
// disabled account give one answer.
func (s *Store) Authenticate(ctx context.Context, email, password string) (*entitlements.Staff, error) {
	st := &entitlements.Staff{}
	var hash string
	var disabled *time.Time
	err := s.pool.QueryRow(ctx, `SELECT id, email, name, role, password_hash, disabled_at, must_change_password FROM staff_users WHERE email = $1`,
		strings.ToLower(strings.TrimSpace(email))).Scan(&st.ID, &st.Email, &st.Name, &st.Role, &hash, &disabled, &st.MustChangePassword)
	if errors.Is(err, pgx.ErrNoRows) {
		hash = dummyHash
	} else if err != nil {
		return nil, unavailable(err)
	}
	ok, cerr := argon2id.ComparePasswordAndHash(password, hash)
	if err != nil || cerr != nil || !ok || disabled != nil {
		return nil, entitlements.Errorf(entitlements.EUNAUTHORIZED, "wrong email or password")
	}
	return st, nil
}

// CreateSession starts a new session (a new random token at every sign-in; only its
// hash is stored), sweeps the sessions past either lifetime, and audits the sign-in.
func (s *Store) CreateSession(ctx context.Context, st *entitlements.Staff, addr string) (string, error) {
	token, hash, err := newSecret("")
	if err != nil {
		return "", err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM staff_sessions WHERE expires_at < now() OR last_seen_at < now() - $1::interval`, entitlements.SessionIdleTTL.String()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO staff_sessions (token_hash, staff_id, expires_at, client_addr) VALUES ($1, $2, now() + $3::interval, $4)`,
			hash, st.ID, entitlements.SessionTTL.String(), addr); err != nil {
			return err
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: st.Email, Action: "staff.sign_in", Subject: st.Email, Details: map[string]string{"client_addr": addr}})
	})
	if err != nil {
		return "", unavailable(err)
	}
	return token, nil
}

// SessionStaff returns the staff member of a live session and touches it: a session
// past its absolute or idle lifetime, or of a disabled account, is unauthorized.
func (s *Store) SessionStaff(ctx context.Context, token string) (*entitlements.Staff, error) {
	st := &entitlements.Staff{}
	err := s.pool.QueryRow(ctx, `UPDATE staff_sessions s SET last_seen_at = now() FROM staff_users u
		WHERE s.token_hash = $1 AND s.expires_at > now() AND s.last_seen_at > now() - $2::interval
		  AND u.id = s.staff_id AND u.disabled_at IS NULL
		RETURNING u.id, u.email, u.name, u.role, u.created_at, u.must_change_password`, HashSecret(token), entitlements.SessionIdleTTL.String()).
		Scan(&st.ID, &st.Email, &st.Name, &st.Role, &st.CreatedAt, &st.MustChangePassword)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, entitlements.Errorf(entitlements.EUNAUTHORIZED, "not signed in")
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return st, nil
}

// ListSessions returns a staff member's live sessions; current marks the caller's.
func (s *Store) ListSessions(ctx context.Context, staffID int64, currentToken string) ([]*entitlements.StaffSession, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, created_at, last_seen_at, expires_at, client_addr, token_hash = $3 FROM staff_sessions
		WHERE staff_id = $1 AND expires_at > now() AND last_seen_at > now() - $2::interval ORDER BY last_seen_at DESC`,
		staffID, entitlements.SessionIdleTTL.String(), HashSecret(currentToken))
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.StaffSession, error) {
		x := &entitlements.StaffSession{}
		return x, r.Scan(&x.ID, &x.CreatedAt, &x.LastSeenAt, &x.ExpiresAt, &x.ClientAddr, &x.Current)
	})
}

// EndSession ends one of a staff member's sessions by its ID.
func (s *Store) EndSession(ctx context.Context, staffID, id int64, actor string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM staff_sessions WHERE id = $1 AND staff_id = $2`, id, staffID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return entitlements.NotFound("session", strconv.FormatInt(id, 10))
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "staff.session_end", Subject: actor, Details: map[string]string{"session_id": strconv.FormatInt(id, 10)}})
	})
}

// DeleteSession ends a session (sign-out), with its audit event.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var email string
		err := tx.QueryRow(ctx, `DELETE FROM staff_sessions s USING staff_users u WHERE s.token_hash = $1 AND u.id = s.staff_id RETURNING u.email`,
			HashSecret(token)).Scan(&email)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: email, Action: "staff.sign_out", Subject: email})
	})
}

// StaffByEmail returns a staff member (for the CLI, which acts as a named staff member).
func (s *Store) StaffByEmail(ctx context.Context, email string) (*entitlements.Staff, error) {
	st := &entitlements.Staff{}
	err := s.pool.QueryRow(ctx, `SELECT id, email, name, role, created_at FROM staff_users WHERE email = $1 AND disabled_at IS NULL`,
		strings.ToLower(email)).Scan(&st.ID, &st.Email, &st.Name, &st.Role, &st.CreatedAt)
	if err != nil {
		return nil, notFound(err, "staff", email)
	}
	return st, nil
}

// CountStaff reports how many staff accounts exist.
func (s *Store) CountStaff(ctx context.Context) (int, error) {
	var n int
	return n, s.pool.QueryRow(ctx, `SELECT count(*) FROM staff_users`).Scan(&n)
}

// ListStaff returns every staff account by email.
func (s *Store) ListStaff(ctx context.Context) ([]*entitlements.StaffAccount, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, email, name, role, created_at, disabled_at IS NOT NULL FROM staff_users ORDER BY email`)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.StaffAccount, error) {
		a := &entitlements.StaffAccount{}
		return a, r.Scan(&a.ID, &a.Email, &a.Name, &a.Role, &a.CreatedAt, &a.Disabled)
	})
}

// UpdateStaff changes an account's role, disables or enables it, or sets a new
// password (each when given), with its audit event. Disabling or a new password ends
// the account's sessions and tokens stop working (disabled) at once.
func (s *Store) UpdateStaff(ctx context.Context, id int64, role *entitlements.Role, disabled *bool, password string, revokeTokens bool, actor string) error {
	var hash *string
	if password != "" {
		h, err := argon2id.CreateHash(password, argonParams)
		if err != nil {
			return err
		}
		hash = &h
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		// Role and state changes take turns, so two admins demoting each other at once
		// can't both succeed and leave no admin.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(staffAdminLock)); err != nil {
			return err
		}
		var email string
		err := tx.QueryRow(ctx, `UPDATE staff_users SET role = coalesce($2, role),
			disabled_at = CASE WHEN $3::bool IS NULL THEN disabled_at WHEN $3 THEN coalesce(disabled_at, now()) ELSE NULL END,
			password_hash = coalesce($4, password_hash),
			must_change_password = CASE WHEN $4::text IS NULL THEN must_change_password ELSE email <> $5 END
			WHERE id = $1 RETURNING email`, id, role, disabled, hash, actor).Scan(&email)
		if err != nil {
			return notFound(err, "staff account", strconv.FormatInt(id, 10))
		}
		if err := adminsRemain(ctx, tx); err != nil {
			return err
		}
		if (disabled != nil && *disabled) || hash != nil {
			if _, err := tx.Exec(ctx, `DELETE FROM staff_sessions WHERE staff_id = $1`, id); err != nil {
				return err
			}
		}
		var revoked int64
		if revokeTokens {
			tag, err := tx.Exec(ctx, `UPDATE staff_tokens SET revoked_at = now() WHERE staff_id = $1 AND revoked_at IS NULL`, id)
			if err != nil {
				return err
			}
			revoked = tag.RowsAffected()
		}
		details := map[string]string{}
		if role != nil {
			details["role"] = string(*role)
		}
		if disabled != nil {
			details["disabled"] = strconv.FormatBool(*disabled)
		}
		if hash != nil {
			details["password"] = "reset"
		}
		if revokeTokens {
			details["tokens_revoked"] = strconv.FormatInt(revoked, 10)
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "staff.update", Subject: email, Details: details})
	})
}

// staffAdminLock serialises changes of staff roles and states.
const staffAdminLock = 0x6d65747275_6d02 // "metrum" + 2

// adminsRemain refuses a change that leaves no enabled admin (under staffAdminLock).
func adminsRemain(ctx context.Context, tx pgx.Tx) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM staff_users WHERE role = 'admin' AND disabled_at IS NULL`).Scan(&n); err != nil {
		return err
	}
	return entitlements.CheckAdminsRemain(n)
}

// RecoverAdmin is the operator's way back when no enabled admin is left (issuer staff
// create --bootstrap --recover, on the issuer's host): under the staff lock, and only
// while no enabled admin exists, it makes the account an enabled admin with a new
// password (creating it if needed) and ends its sessions. Audited as
// staff.recover_admin.
func (s *Store) RecoverAdmin(ctx context.Context, st *entitlements.Staff, password string) error {
	hash, err := argon2id.CreateHash(password, argonParams)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(staffAdminLock)); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM staff_users WHERE role = 'admin' AND disabled_at IS NULL`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return entitlements.Errorf(entitlements.ECONFLICT, "an enabled admin exists: ask them (recovery is only for when none is left)")
		}
		err := tx.QueryRow(ctx, `INSERT INTO staff_users (email, name, role, password_hash) VALUES ($1, $2, 'admin', $3)
			ON CONFLICT (email) DO UPDATE SET role = 'admin', disabled_at = NULL, password_hash = excluded.password_hash, must_change_password = false
			RETURNING id, created_at`, st.Email, st.Name, hash).Scan(&st.ID, &st.CreatedAt)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM staff_sessions WHERE staff_id = $1`, st.ID); err != nil {
			return err
		}
		st.Role = entitlements.RoleAdmin
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: entitlements.BootstrapActor, Action: "staff.recover_admin", Subject: st.Email})
	})
}
