package storage

import (
	"context"
	"encoding/base64"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/signing"
)

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// KeyRecord is a signing key's public part and metadata.
type KeyRecord struct {
	KID       string
	Product   string
	Alg       string
	Purposes  []string
	PublicJWK signing.PublicJWK
	Backend   string
	Status    string
	CreatedAt time.Time
	NotAfter  *time.Time
	// Active lists the product/purpose slots this key is the active signer of.
	Active []string
}

// AddKey records a new key for k.Product. With activate it also becomes the active
// signer of each of its purposes; otherwise it only joins the key set (pre-published
// for a verifier release) and is activated later.
func (s *Store) AddKey(ctx context.Context, k *KeyRecord, activate bool, actor string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, product, alg, purposes, public_jwk, backend) VALUES ($1, $2, $3, $4, $5, $6)`,
			k.KID, k.Product, k.Alg, k.Purposes, k.PublicJWK, k.Backend)
		if isUniqueViolation(err, "") {
			return entitlements.Errorf(entitlements.ECONFLICT, "key %s is already recorded", k.KID)
		}
		if err != nil {
			return err
		}
		if err := appendAudit(ctx, tx, &AuditEvent{Actor: actor, Action: "key.generate", Subject: k.KID,
			Details: map[string]string{"product": k.Product, "alg": k.Alg, "backend": k.Backend}}); err != nil {
			return err
		}
		if activate {
			return activateKey(ctx, tx, k.KID, actor)
		}
		return nil
	})
}

// ActivateKey makes a key the active signer of its product's slots for each of its
// purposes. The key it replaces stays in the key set and keeps verifying.
func (s *Store) ActivateKey(ctx context.Context, kid, actor string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return activateKey(ctx, tx, kid, actor) })
}

func activateKey(ctx context.Context, tx pgx.Tx, kid, actor string) error {
	var product, status string
	var purposes []string
	var notAfter *time.Time
	err := tx.QueryRow(ctx, `SELECT product, status, purposes, not_after FROM signing_keys WHERE kid = $1 FOR UPDATE`, kid).
		Scan(&product, &status, &purposes, &notAfter)
	if err != nil {
		return notFound(err, "key", kid)
	}
	if status != "active" {
		return entitlements.Errorf(entitlements.ECONFLICT, "key %s is %s and can't sign", kid, status)
	}
	if notAfter != nil && !notAfter.After(time.Now()) {
		return entitlements.Errorf(entitlements.ECONFLICT, "key %s is past its not_after", kid)
	}
	for _, p := range purposes {
		var prev string
		err := tx.QueryRow(ctx, `SELECT kid FROM active_keys WHERE product = $1 AND purpose = $2 FOR UPDATE`, product, p).Scan(&prev)
		if err != nil && err != pgx.ErrNoRows {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO active_keys (product, purpose, kid) VALUES ($1, $2, $3)
			ON CONFLICT (product, purpose) DO UPDATE SET kid = excluded.kid`, product, p, kid)
		if err != nil {
			return err
		}
		if err := appendAudit(ctx, tx, &AuditEvent{Actor: actor, Action: "key.activate", Subject: kid,
			Details: map[string]string{"product": product, "purpose": p, "previous": prev}}); err != nil {
			return err
		}
	}
	return nil
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
			return entitlements.Errorf(entitlements.ECONFLICT, "key %s is the active signer of %d slot(s): activate its successor first", kid, slots)
		}
		tag, err := tx.Exec(ctx, `UPDATE signing_keys SET status = 'retired', retired_at = now() WHERE kid = $1 AND status <> 'retired'`, kid)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return entitlements.Errorf(entitlements.ENOTFOUND, "no key %s that is not already retired", kid)
		}
		return appendAudit(ctx, tx, &AuditEvent{Actor: actor, Action: "key.retire", Subject: kid, Details: map[string]string{"reason": reason}})
	})
}

// SetKeyNotAfter sets the time after which a key may no longer sign (formats.md
// section 1): verifiers keep accepting what it signed before. It can only move earlier.
func (s *Store) SetKeyNotAfter(ctx context.Context, kid string, at time.Time, actor string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE signing_keys SET not_after = $2 WHERE kid = $1 AND (not_after IS NULL OR not_after > $2)`, kid, at)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return entitlements.Errorf(entitlements.ECONFLICT, "key %s not found, or its not_after is already earlier", kid)
		}
		return appendAudit(ctx, tx, &AuditEvent{Actor: actor, Action: "key.not_after", Subject: kid,
			Details: map[string]string{"not_after": at.UTC().Format(time.RFC3339)}})
	})
}

// ActiveKID returns the active key ID for a product and purpose; a key past its
// not_after is not returned (it may no longer sign).
func (s *Store) ActiveKID(ctx context.Context, product, purpose string) (string, error) {
	var kid string
	err := s.pool.QueryRow(ctx, `SELECT a.kid FROM active_keys a JOIN signing_keys k ON k.kid = a.kid
		WHERE a.product = $1 AND a.purpose = $2 AND k.status = 'active' AND (k.not_after IS NULL OR k.not_after > now())`,
		product, purpose).Scan(&kid)
	if err != nil {
		return "", notFound(err, "usable active key for", product+"/"+purpose)
	}
	return kid, nil
}

// ListKeys returns every recorded key, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]*KeyRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT k.kid, k.product, k.alg, k.purposes, k.public_jwk, k.backend, k.status, k.created_at, k.not_after,
		coalesce(array_agg(a.product || '/' || a.purpose ORDER BY a.product, a.purpose) FILTER (WHERE a.kid IS NOT NULL), '{}')
		FROM signing_keys k LEFT JOIN active_keys a ON a.kid = k.kid GROUP BY k.kid ORDER BY k.created_at, k.kid`)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*KeyRecord, error) {
		k := &KeyRecord{}
		return k, r.Scan(&k.KID, &k.Product, &k.Alg, &k.Purposes, &k.PublicJWK, &k.Backend, &k.Status, &k.CreatedAt, &k.NotAfter, &k.Active)
	})
}
