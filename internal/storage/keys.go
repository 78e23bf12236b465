package storage

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

const keyCols = `k.kid, k.product, k.alg, k.purposes, k.public_jwk, k.backend, k.backend_ref, k.status, k.created_at,
	k.not_after, k.retired_at,
	coalesce((SELECT array_agg(a.product || '/' || a.purpose ORDER BY a.purpose) FROM active_keys a WHERE a.kid = k.kid), '{}')`

func scanKey(r pgx.Row) (*entitlements.KeyRecord, error) {
	k := &entitlements.KeyRecord{}
	err := r.Scan(&k.KID, &k.Product, &k.Alg, &k.Purposes, &k.PublicJWK, &k.Backend, &k.BackendRef, &k.Status,
		&k.CreatedAt, &k.NotAfter, &k.RetiredAt, &k.Active)
	return k, err
}

// AddKey records a new key for k.Product. With activate it also becomes the active
// signer of each of its purposes; otherwise it is a standby: in the key set (so a
// verifier release can ship it) but signing nothing until activated.
func (s *Store) AddKey(ctx context.Context, k *entitlements.KeyRecord, activate bool, actor string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO signing_keys (kid, product, alg, purposes, public_jwk, backend, backend_ref)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING status, created_at`,
			k.KID, k.Product, k.Alg, k.Purposes, k.PublicJWK, k.Backend, k.BackendRef).Scan(&k.Status, &k.CreatedAt)
		if isUniqueViolation(err, "") {
			return entitlements.Errorf(entitlements.ECONFLICT, "key %s is already recorded", k.KID)
		}
		if isForeignKeyViolation(err) {
			return entitlements.Invalid(map[string]string{"product": "no product " + k.Product})
		}
		if err != nil {
			return err
		}
		if err := appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "key.generate", Subject: k.KID,
			Details: map[string]string{"product": k.Product, "alg": k.Alg, "backend": k.Backend}}); err != nil {
			return err
		}
		if activate {
			slots, err := activateKey(ctx, tx, k.KID, actor)
			k.Active = slots
			return err
		}
		return nil
	})
}

// ActivateKey makes a key the active signer of its product's slot for each of its
// purposes. The key it replaces stays in the key set and keeps verifying.
func (s *Store) ActivateKey(ctx context.Context, kid, actor string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := activateKey(ctx, tx, kid, actor)
		return err
	})
}

// RotateSlot activates the newest standby key of a slot: a published key of the
// product with the purpose that is not the slot's signer and was made after it. It
// returns the new and the previous signer. No standby is a conflict: the key to
// rotate to must be generated and released in a verifier first.
func (s *Store) RotateSlot(ctx context.Context, product, purpose, actor string) (next, prev string, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		// Lock the slot so two rotations can't both pick a successor.
		err := tx.QueryRow(ctx, `SELECT kid FROM active_keys WHERE product = $1 AND purpose = $2 FOR UPDATE`, product, purpose).Scan(&prev)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT k.kid FROM signing_keys k
			WHERE k.product = $1 AND $2 = ANY (k.purposes) AND k.status = 'published' AND k.kid <> $3
			  AND (k.not_after IS NULL OR k.not_after > now())
			  AND k.created_at > coalesce((SELECT created_at FROM signing_keys WHERE kid = $3), '-infinity')
			ORDER BY k.created_at DESC, k.kid LIMIT 1`, product, purpose, prev).Scan(&next)
		if errors.Is(err, pgx.ErrNoRows) {
			return entitlements.Errorf(entitlements.ECONFLICT,
				"no standby key for %s/%s: generate one, export the key set and release a verifier that trusts it, then rotate", product, purpose)
		}
		if err != nil {
			return err
		}
		_, err = activateKey(ctx, tx, next, actor)
		return err
	})
	return next, prev, err
}

func activateKey(ctx context.Context, tx pgx.Tx, kid, actor string) ([]string, error) {
	var product, status string
	var purposes []string
	var notAfter *time.Time
	err := tx.QueryRow(ctx, `SELECT product, status, purposes, not_after FROM signing_keys WHERE kid = $1 FOR UPDATE`, kid).
		Scan(&product, &status, &purposes, &notAfter)
	if err != nil {
		return nil, notFound(err, "key", kid)
	}
	if status != entitlements.KeyPublished {
		return nil, entitlements.Errorf(entitlements.ECONFLICT, "key %s is %s and can't sign", kid, status)
	}
	if notAfter != nil && !notAfter.After(time.Now()) {
		return nil, entitlements.Errorf(entitlements.ECONFLICT, "key %s is past its not_after", kid)
	}
	var slots []string
	for _, p := range purposes {
		var prev string
		err := tx.QueryRow(ctx, `SELECT kid FROM active_keys WHERE product = $1 AND purpose = $2 FOR UPDATE`, product, p).Scan(&prev)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
		if prev == kid {
			continue
		}
		_, err = tx.Exec(ctx, `INSERT INTO active_keys (product, purpose, kid) VALUES ($1, $2, $3)
			ON CONFLICT (product, purpose) DO UPDATE SET kid = excluded.kid`, product, p, kid)
		if err != nil {
			return nil, err
		}
		slots = append(slots, product+"/"+p)
		if err := appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "key.activate", Subject: kid,
			Details: map[string]string{"product": product, "purpose": p, "previous": prev}}); err != nil {
			return nil, err
		}
	}
	return slots, nil
}

// RetireKey takes a key out of the key set: verifiers released after this stop
// trusting it, so everything it signed must have been replaced. An active signer
// can't be retired: rotate its slots first.
func (s *Store) RetireKey(ctx context.Context, kid, reason, actor string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var slots int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM active_keys WHERE kid = $1`, kid).Scan(&slots); err != nil {
			return err
		}
		if slots > 0 {
			return entitlements.Errorf(entitlements.ECONFLICT, "key %s is the active signer of %d slot(s): rotate to its successor first", kid, slots)
		}
		tag, err := tx.Exec(ctx, `UPDATE signing_keys SET status = 'retired', retired_at = now() WHERE kid = $1 AND status <> 'retired'`, kid)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return entitlements.Errorf(entitlements.ENOTFOUND, "no key %s that is not already retired", kid)
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "key.retire", Subject: kid, Details: map[string]string{"reason": reason}})
	})
}

// SetKeyNotAfter sets the time after which a key may no longer sign (formats.md
// section 1): verifiers keep accepting what it signed before. It can only move
// earlier, never later: a compromise time once recorded is not undone.
func (s *Store) SetKeyNotAfter(ctx context.Context, kid string, at time.Time, actor, reason string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE signing_keys SET not_after = $2 WHERE kid = $1 AND (not_after IS NULL OR not_after > $2)`, kid, at)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return entitlements.Errorf(entitlements.ECONFLICT, "key %s not found, or its not_after is already earlier", kid)
		}
		details := map[string]string{"not_after": verify.FormatTime(at)}
		if reason != "" {
			details["reason"] = reason
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "key.not_after", Subject: kid, Details: details})
	})
}

// KeySignedAfter counts the licenses a key signed after at, with the first few IDs:
// what stops verifying when its not_after moves to at.
func (s *Store) KeySignedAfter(ctx context.Context, kid string, at time.Time, sample int) (int, []string, error) {
	var n int
	var ids []string
	err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce((array_agg(id ORDER BY issued_at, id))[1:$3], '{}')
		FROM licenses WHERE key_id = $1 AND issued_at > $2`, kid, at, sample).Scan(&n, &ids)
	return n, ids, unavailable(err)
}

// ActiveKey returns the key that signs for a product and purpose now. A key past its
// not_after is not returned: it may no longer sign.
func (s *Store) ActiveKey(ctx context.Context, product, purpose string) (*entitlements.KeyRecord, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyCols+` FROM active_keys a JOIN signing_keys k ON k.kid = a.kid
		WHERE a.product = $1 AND a.purpose = $2 AND k.status = 'published' AND (k.not_after IS NULL OR k.not_after > now())`,
		product, purpose))
	if err != nil {
		return nil, notFound(err, "usable active key for", product+"/"+purpose)
	}
	return k, nil
}

// GetKey returns one key record.
func (s *Store) GetKey(ctx context.Context, kid string) (*entitlements.KeyRecord, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyCols+` FROM signing_keys k WHERE k.kid = $1`, kid))
	if err != nil {
		return nil, notFound(err, "key", kid)
	}
	return k, nil
}

// ListKeys returns every recorded key, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]*entitlements.KeyRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyCols+` FROM signing_keys k ORDER BY k.created_at, k.kid`)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.KeyRecord, error) { return scanKey(r) })
}
