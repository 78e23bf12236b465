package issuance

import (
	"context"
	"slices"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/verify"
)

// GenerateKey makes a new file key for product and purposes and seals it into the key
// ring. With activate it becomes the active signer of those slots at once; without,
// it only joins the key set, to ship in a verifier release before it signs anything
// (keys/README.md). Only admins manage keys.
func (s *Service) GenerateKey(ctx context.Context, product, alg string, purposes []verify.Purpose, activate bool, by *entitlements.Staff) (*storage.KeyRecord, error) {
	if err := require(by, entitlements.RoleAdmin, "managing keys"); err != nil {
		return nil, err
	}
	if product != "genai-smart-router" && product != "coresdk" {
		return nil, entitlements.Invalid(map[string]string{"product": "genai-smart-router or coresdk"})
	}
	k, err := signing.GenerateKey(alg, purposes)
	if err != nil {
		return nil, entitlements.Invalid(map[string]string{"alg": err.Error()})
	}
	jwk, err := signing.JWKOf(k.Public(), k.Algorithm(), k.Purposes())
	if err != nil {
		return nil, err
	}
	if err := s.Keys.Store(k); err != nil {
		return nil, errorf("store key: %w", err)
	}
	rec := &storage.KeyRecord{KID: k.KeyID(), Product: product, Alg: alg, PublicJWK: jwk, Backend: "file"}
	for _, p := range purposes {
		rec.Purposes = append(rec.Purposes, string(p))
	}
	if err := s.Store.AddKey(ctx, rec, activate, by.Email); err != nil {
		return nil, err
	}
	return rec, nil
}

// PublicKeySet returns the JWK Set of every key that is not retired: what a verifier
// release embeds.
func (s *Service) PublicKeySet(ctx context.Context) ([]byte, error) {
	keys, err := s.Store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var jwks []signing.PublicJWK
	for _, k := range keys {
		if k.Status == "retired" {
			continue
		}
		jwk := k.PublicJWK
		if k.NotAfter != nil {
			jwk.NotAfter = verify.FormatTime(*k.NotAfter)
		}
		jwks = append(jwks, jwk)
	}
	slices.SortFunc(jwks, func(a, b signing.PublicJWK) int {
		if a.Kid < b.Kid {
			return -1
		}
		return 1
	})
	return signing.KeySetJSON(jwks)
}

// ActivateKey makes a recorded key the active signer of its slots.
func (s *Service) ActivateKey(ctx context.Context, kid string, by *entitlements.Staff) error {
	if err := require(by, entitlements.RoleAdmin, "managing keys"); err != nil {
		return err
	}
	if _, err := s.Keys.Signer(kid); err != nil {
		return entitlements.Errorf(entitlements.ECONFLICT, "key %s can't be opened here: %v", kid, err)
	}
	return s.Store.ActivateKey(ctx, kid, by.Email)
}

// RetireKey takes a key out of the exported key set.
func (s *Service) RetireKey(ctx context.Context, kid, reason string, by *entitlements.Staff) error {
	if err := require(by, entitlements.RoleAdmin, "managing keys"); err != nil {
		return err
	}
	if reason == "" {
		return entitlements.Invalid(map[string]string{"reason": "a reason is required"})
	}
	return s.Store.RetireKey(ctx, kid, reason, by.Email)
}
