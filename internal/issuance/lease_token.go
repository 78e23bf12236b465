package issuance

import (
	"context"
	"crypto/rand"
	"crypto/sha256"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

// NewLeaseToken makes a lease token (32 random bytes, base64url) and its SHA-256, the
// only form that is stored. A plain hash suffices: the token has 256 bits of entropy,
// so there is nothing to brute-force, and the lease API can look it up by hash in one
// indexed read.
func NewLeaseToken() (string, []byte, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, err
	}
	tok := verify.EncodeB64(raw)
	return tok, HashLeaseToken(tok), nil
}

// HashLeaseToken is how a presented token is looked up.
func HashLeaseToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// RotateLeaseToken gives a lease-required license a new token and returns it (shown
// once); the old one stops working at once. Issuers and above may rotate.
func (s *Service) RotateLeaseToken(ctx context.Context, licenseID string, by *entitlements.Staff) (string, error) {
	if err := entitlements.Require(by, entitlements.RoleIssuer, "rotating a lease token"); err != nil {
		return "", err
	}
	tok, hash, err := NewLeaseToken()
	if err != nil {
		return "", err
	}
	if err := s.store.RotateLeaseToken(ctx, licenseID, hash, by.Email); err != nil {
		return "", err
	}
	s.logc(ctx, "lease token rotated", "license_id", licenseID, "actor", by.Email)
	return tok, nil
}
