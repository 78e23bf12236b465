package issuance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/templates"
	"github.com/metrum/licensing/verify"
)

// GenerateKey makes a new key in a backend and records its public part. With
// activate it becomes the active signer of its slots at once (a first key, or an
// emergency); without, it is a standby that joins the key set, to ship in a verifier
// release before it signs anything (keys/README.md). Only admins manage keys.
func (s *Service) GenerateKey(ctx context.Context, in entitlements.KeyInput, activate bool, by *entitlements.Staff) (*entitlements.KeyRecord, error) {
	if err := entitlements.Require(by, entitlements.RoleAdmin, "managing keys"); err != nil {
		return nil, err
	}
	if err := validateKeyInput(&in); err != nil {
		return nil, err
	}
	k, ref, err := s.Keys.Generate(in.Backend, in.Alg, in.Purposes)
	if err != nil {
		return nil, entitlements.Errorf(entitlements.EINVALID, "%v", err)
	}
	rec, err := s.RegisterKey(ctx, in.Product, k, in.Backend, ref, activate, by)
	if err != nil {
		// The record did not commit: the key must not outlive it, in a file or on a
		// token, where nothing would ever find or retire it.
		if derr := s.Keys.Destroy(signing.KeyRef{KID: k.KeyID(), Backend: in.Backend, Ref: ref}); derr != nil {
			s.logc(ctx, "key not destroyed after its record failed", "key_id", k.KeyID(), "backend", in.Backend, "err", derr)
			return nil, errors.Join(err, fmt.Errorf("and the new key %s could not be removed from its backend: %w", k.KeyID(), derr))
		}
		return nil, err
	}
	return rec, nil
}

// RegisterKey records the public part of a key its backend already holds (made by
// GenerateKey, or imported).
func (s *Service) RegisterKey(ctx context.Context, product string, k signing.Signer, backend, ref string, activate bool, by *entitlements.Staff) (*entitlements.KeyRecord, error) {
	if err := entitlements.Require(by, entitlements.RoleAdmin, "managing keys"); err != nil {
		return nil, err
	}
	jwk, err := signing.JWKOf(k.Public(), k.Algorithm(), k.Purposes(), product)
	if err != nil {
		return nil, err
	}
	rec := &entitlements.KeyRecord{KID: k.KeyID(), Product: product, Alg: k.Algorithm(), PublicJWK: jwk, Backend: backend, BackendRef: ref}
	for _, p := range k.Purposes() {
		rec.Purposes = append(rec.Purposes, string(p))
	}
	if err := s.store.AddKey(ctx, rec, activate, by.Email); err != nil {
		return nil, err
	}
	s.logc(ctx, "key recorded", "key_id", rec.KID, "product", product, "alg", rec.Alg, "backend", backend, "active", strings.Join(rec.Active, " "), "actor", by.Email)
	return rec, nil
}

// ActivateKey makes a recorded key the active signer of its slots, after checking
// its backend can open it here.
func (s *Service) ActivateKey(ctx context.Context, kid string, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.RoleAdmin, "managing keys"); err != nil {
		return err
	}
	rec, err := s.store.GetKey(ctx, kid)
	if err != nil {
		return err
	}
	if _, err := s.Keys.Open(keyRef(rec)); err != nil {
		return entitlements.Errorf(entitlements.ECONFLICT, "key %s can't be opened here: %v", kid, err)
	}
	return s.store.ActivateKey(ctx, kid, by.Email)
}

// RotateKey makes the newest standby key of a slot its active signer and returns the
// new and previous key IDs. The previous key stays in the key set, so everything it
// signed keeps verifying until it is retired.
func (s *Service) RotateKey(ctx context.Context, product string, purpose verify.Purpose, by *entitlements.Staff) (next, prev string, err error) {
	if err := entitlements.Require(by, entitlements.RoleAdmin, "managing keys"); err != nil {
		return "", "", err
	}
	next, prev, err = s.store.RotateSlot(ctx, product, string(purpose), by.Email)
	if err != nil {
		return "", "", err
	}
	s.logc(ctx, "key rotated", "product", product, "purpose", string(purpose), "key_id", next, "previous", prev, "actor", by.Email)
	return next, prev, nil
}

// RetireKey takes a key out of the exported key set.
func (s *Service) RetireKey(ctx context.Context, kid, reason string, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.RoleAdmin, "managing keys"); err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" {
		return entitlements.Invalid(map[string]string{"reason": "a reason is required"})
	}
	return s.store.RetireKey(ctx, kid, reason, by.Email)
}

// SetKeyNotAfter stops a key signing after at (a compromise time, or a planned end).
func (s *Service) SetKeyNotAfter(ctx context.Context, kid string, at time.Time, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.RoleAdmin, "managing keys"); err != nil {
		return err
	}
	return s.SetKeyNotAfterWhy(ctx, kid, at, "", by)
}

// MayManageKeys says whether by may manage keys (admins): the console asks before
// it shows a key action's form, so a viewer never fills one in to be refused.
func (s *Service) MayManageKeys(by *entitlements.Staff) error {
	return entitlements.Require(by, entitlements.RoleAdmin, "managing keys")
}

// SetKeyNotAfterWhy is SetKeyNotAfter with the reason for the audit trail.
func (s *Service) SetKeyNotAfterWhy(ctx context.Context, kid string, at time.Time, reason string, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.RoleAdmin, "managing keys"); err != nil {
		return err
	}
	reason = strings.TrimSpace(reason)
	if !entitlements.OneLine(reason) || len(reason) > 500 {
		return entitlements.Invalid(map[string]string{"reason": "one line of text, at most 500 characters"})
	}
	return s.store.SetKeyNotAfter(ctx, kid, at.UTC().Truncate(time.Second), by.Email, reason)
}

// KeySignedAfter counts the licenses a key signed after at (and names the first
// sample): what its verifiers reject once its not_after is at.
func (s *Service) KeySignedAfter(ctx context.Context, kid string, at time.Time, sample int, by *entitlements.Staff) (int, []string, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading a key"); err != nil {
		return 0, nil, err
	}
	return s.store.KeySignedAfter(ctx, kid, at.UTC().Truncate(time.Second), sample)
}

// PublicKeySet returns the JWK Set of every key that is not retired: what a verifier
// release embeds. Sorted by kid, so the same keys always give the same bytes.
func (s *Service) PublicKeySet(ctx context.Context) ([]byte, error) {
	return s.ProductKeySet(ctx, "")
}

// ProductKeySet is PublicKeySet for one product's keys ("" = every product): a
// verifier released for one product trusts nothing of the others.
func (s *Service) ProductKeySet(ctx context.Context, product string) ([]byte, error) {
	if product != "" && templates.FormOf(product) == "" {
		return nil, entitlements.Invalid(map[string]string{"product": "genai-smart-router or coresdk"})
	}
	keys, err := s.store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var jwks []signing.PublicJWK
	for _, k := range keys {
		if k.Status == entitlements.KeyRetired || (product != "" && k.Product != product) {
			continue
		}
		jwk := k.PublicJWK
		// Every key belongs to one product (formats.md v1.2): the set says which, so
		// one product's key can never vouch for another's documents.
		jwk.Products = []string{k.Product}
		if k.NotAfter != nil {
			jwk.NotAfter = verify.FormatTime(*k.NotAfter)
		}
		jwks = append(jwks, jwk)
	}
	slices.SortFunc(jwks, func(a, b signing.PublicJWK) int { return strings.Compare(a.Kid, b.Kid) })
	return signing.KeySetJSON(jwks)
}

// signerFor opens the active key of a product and purpose.
func (s *Service) signerFor(ctx context.Context, product string, purpose verify.Purpose) (signing.Signer, error) {
	rec, err := s.store.ActiveKey(ctx, product, string(purpose))
	if entitlements.ErrorCode(err) == entitlements.ENOTFOUND {
		return nil, entitlements.Errorf(entitlements.ECONFLICT, "no active %s signing key for %s: run `issuer keys generate --activate`", purpose, product)
	}
	if err != nil {
		return nil, err
	}
	signer, err := s.Keys.Open(keyRef(rec))
	if err != nil {
		return nil, errorf("open %s key %s: %w", purpose, rec.KID, err)
	}
	return signer, nil
}

// LeaseSigner opens the active lease key of a product (the lease API uses it).
func (s *Service) LeaseSigner(ctx context.Context, product string) (signing.Signer, error) {
	return s.signerFor(ctx, product, verify.PurposeLease)
}

// keyRef is what a key's backend needs to open it.
func keyRef(k *entitlements.KeyRecord) signing.KeyRef {
	r := signing.KeyRef{KID: k.KID, Alg: k.Alg, Backend: k.Backend, Ref: k.BackendRef}
	for _, p := range k.Purposes {
		r.Purposes = append(r.Purposes, verify.Purpose(p))
	}
	return r
}

// validate applies the key policy: known product, purposes and algorithm, and an
// algorithm that can sign what the purposes need. Envelopes (every revocation bundle
// and lease, and router licenses) are Ed25519 or ES256; RS256 signs only CoreSDK
// license tokens.
func validateKeyInput(in *entitlements.KeyInput) error {
	f := map[string]string{}
	if templates.FormOf(in.Product) == "" {
		f["product"] = "genai-smart-router or coresdk"
	}
	if len(in.Purposes) == 0 {
		f["purpose"] = "at least one of license, revocation, lease"
	}
	for i, p := range in.Purposes {
		switch p {
		case verify.PurposeLicense, verify.PurposeRevocation, verify.PurposeLease:
			if slices.Contains(in.Purposes[:i], p) {
				f["purpose"] = "purpose " + string(p) + " listed twice"
			}
		default:
			f["purpose"] = "unknown purpose " + string(p)
		}
	}
	switch in.Alg {
	case verify.AlgEdDSA, verify.AlgES256:
	case verify.AlgRS256:
		if templates.FormOf(in.Product) != templates.FormJWS || !slices.Equal(in.Purposes, []verify.Purpose{verify.PurposeLicense}) {
			f["alg"] = "RS256 keys sign only CoreSDK license tokens (purpose license, product coresdk)"
		}
	default:
		f["alg"] = "EdDSA, ES256 or RS256"
	}
	if in.Backend == "" {
		in.Backend = "file"
	}
	return entitlements.Invalid(f)
}
