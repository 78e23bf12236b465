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

// AddKey records a new key and makes it the active key for product and each of its
// purposes, in one transaction. The previous active key of a slot keeps verifying.
func (s *Store) AddKey(ctx context.Context, k *KeyRecord, product, actor string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, alg, purposes, public_jwk, backend) VALUES ($1, $2, $3, $4, $5)`,
			k.KID, k.Alg, k.Purposes, k.PublicJWK, k.Backend)
		if isUniqueViolation(err, "") {
			return entitlements.Errorf(entitlements.ECONFLICT, "key %s is already recorded", k.KID)
		}
		if err != nil {
			return err
		}
		for _, p := range k.Purposes {
			_, err := tx.Exec(ctx, `INSERT INTO active_keys (product, purpose, kid) VALUES ($1, $2, $3)
				ON CONFLICT (product, purpose) DO UPDATE SET kid = excluded.kid`, product, p, k.KID)
			if err != nil {
				return err
			}
		}
		return appendAudit(ctx, tx, &AuditEvent{Actor: actor, Action: "key.activate", Subject: k.KID,
			Details: map[string]string{"product": product, "alg": k.Alg}})
	})
}

// ActiveKID returns the active key ID for a product and purpose.
func (s *Store) ActiveKID(ctx context.Context, product, purpose string) (string, error) {
	var kid string
	err := s.pool.QueryRow(ctx, `SELECT kid FROM active_keys WHERE product = $1 AND purpose = $2`, product, purpose).Scan(&kid)
	if err != nil {
		return "", notFound(err, "active key for", product+"/"+purpose)
	}
	return kid, nil
}

// ListKeys returns every recorded key, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]*KeyRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT k.kid, k.alg, k.purposes, k.public_jwk, k.backend, k.status, k.created_at, k.not_after,
		coalesce(array_agg(a.product || '/' || a.purpose ORDER BY a.product, a.purpose) FILTER (WHERE a.kid IS NOT NULL), '{}')
		FROM signing_keys k LEFT JOIN active_keys a ON a.kid = k.kid GROUP BY k.kid ORDER BY k.created_at, k.kid`)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*KeyRecord, error) {
		k := &KeyRecord{}
		return k, r.Scan(&k.KID, &k.Alg, &k.Purposes, &k.PublicJWK, &k.Backend, &k.Status, &k.CreatedAt, &k.NotAfter, &k.Active)
	})
}
