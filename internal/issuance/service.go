// Package issuance is the issuer's application service: it turns approved
// entitlements into signed license files through templates, the signer and storage,
// and enforces who may do what.
package issuance

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/verify"
)

// KeyStore makes keys and opens them for signing; the private parts stay inside it.
type KeyStore interface {
	Generate(backend, alg string, purposes []verify.Purpose) (signing.Signer, string, error)
	Open(ref signing.KeyRef) (signing.Signer, error)
}

var _ KeyStore = (*signing.Keys)(nil)

// Service is the issuer's business logic over storage.
type Service struct {
	Store        *storage.Store
	Keys         KeyStore
	Issuer       string // the `issuer` member of every payload, e.g. "metrum"
	RenewURL     string // lease renew URL written into lease-policy licenses
	MakerChecker bool   // approver must not be the creator
	Log          *slog.Logger
	Now          func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func require(by *entitlements.Staff, role entitlements.Role, what string) error {
	if by == nil || !by.Role.AtLeast(role) {
		return entitlements.Errorf(entitlements.EFORBIDDEN, "%s needs the %s role", what, role)
	}
	return nil
}

// CreateCustomer adds a customer.
func (s *Service) CreateCustomer(ctx context.Context, c *entitlements.Customer, by *entitlements.Staff) error {
	if err := require(by, entitlements.RoleIssuer, "creating a customer"); err != nil {
		return err
	}
	return s.Store.CreateCustomer(ctx, c, by.Email)
}

// Approve approves a draft entitlement (maker-checker applies).
func (s *Service) Approve(ctx context.Context, id string, by *entitlements.Staff) (*entitlements.Entitlement, error) {
	return s.Store.DecideEntitlement(ctx, id, by, true, s.MakerChecker, "")
}

// Reject rejects a draft entitlement, with a reason.
func (s *Service) Reject(ctx context.Context, id, reason string, by *entitlements.Staff) (*entitlements.Entitlement, error) {
	if reason == "" {
		return nil, entitlements.Invalid(map[string]string{"reason": "a reason is required"})
	}
	return s.Store.DecideEntitlement(ctx, id, by, false, s.MakerChecker, reason)
}

func (s *Service) logf(msg string, args ...any) {
	if s.Log != nil {
		s.Log.Info(msg, args...)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf("issuance: "+format, args...) }
