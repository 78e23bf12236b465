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
	"github.com/metrum/licensing/internal/templates"
	"github.com/metrum/licensing/verify"
)

// KeyStore makes keys and opens them for signing; the private parts stay inside it.
type KeyStore interface {
	Generate(backend, alg string, purposes []verify.Purpose) (signing.Signer, string, error)
	Open(ref signing.KeyRef) (signing.Signer, error)
	Destroy(ref signing.KeyRef) error
}

var _ KeyStore = (*signing.Keys)(nil)

// Config is what the issuer's service is configured with.
type Config struct {
	Keys KeyStore
	// Issuer is the `issuer` member of every envelope payload and bundle ("metrum");
	// CoreSDKIssuer the `iss` of CoreSDK tokens (default https://licensing.coresdk.io).
	Issuer        string
	CoreSDKIssuer string
	RenewURL      string // lease renew URL written into lease-policy licenses
	MakerChecker  bool   // approver must not be the creator
	// Changeover is how long a replaced license keeps working after its successor is
	// issued (the default for successors that don't set their own).
	Changeover time.Duration
	// BundleTTL is a revocation bundle's lifetime (default 7 days); it is re-published
	// at half. BundleRetention prunes entries of licenses expired longer ago (90 days).
	BundleTTL       time.Duration
	BundleRetention time.Duration
	Log             *slog.Logger
	Now             func() time.Time
}

// Service is the issuer's business logic over storage: the staff application
// service. Every method takes the acting staff member and checks its role with
// entitlements.Require before anything else; the store is private, so no caller
// reaches it around the checks.
type Service struct {
	Config
	store   *storage.Store
	signIns signIns
	audits  auditRuns
}

// New is the service over a store.
func New(store *storage.Store, c Config) *Service { return &Service{Config: c, store: store} }

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// SelfService is the actor of self-service purchases: it opens and issues an order's
// entitlement (approved by the catalogue policy, never by a person) and suspends a
// refunded or disputed order's license for staff to review. It acts only through the
// purchase service, never from a session or token.
var SelfService = &entitlements.Staff{Email: "system:self-service", Role: entitlements.RoleApprover}

// CreateCustomer adds a customer.
func (s *Service) CreateCustomer(ctx context.Context, c *entitlements.Customer, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.RoleIssuer, "creating a customer"); err != nil {
		return err
	}
	return s.store.CreateCustomer(ctx, c, by.Email)
}

// Approve approves a draft entitlement (maker-checker applies).
func (s *Service) Approve(ctx context.Context, id string, by *entitlements.Staff) (*entitlements.Entitlement, error) {
	if err := entitlements.Require(by, entitlements.RoleApprover, "approving an entitlement"); err != nil {
		return nil, err
	}
	return s.store.DecideEntitlement(ctx, id, by, true, s.MakerChecker, "")
}

// Cancel withdraws a draft or approved entitlement, with a reason.
func (s *Service) Cancel(ctx context.Context, id, reason string, by *entitlements.Staff) (*entitlements.Entitlement, error) {
	if err := entitlements.Require(by, entitlements.RoleIssuer, "cancelling an entitlement"); err != nil {
		return nil, err
	}
	if reason == "" {
		return nil, entitlements.Invalid(map[string]string{"reason": "a reason is required"})
	}
	return s.store.CancelEntitlement(ctx, id, by, reason)
}

// UpdateCustomer corrects a customer's name or email.
func (s *Service) UpdateCustomer(ctx context.Context, c *entitlements.Customer, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.RoleIssuer, "updating a customer"); err != nil {
		return err
	}
	return s.store.UpdateCustomer(ctx, c, by.Email)
}

// Reject rejects a draft entitlement, with a reason.
func (s *Service) Reject(ctx context.Context, id, reason string, by *entitlements.Staff) (*entitlements.Entitlement, error) {
	if err := entitlements.Require(by, entitlements.RoleApprover, "rejecting an entitlement"); err != nil {
		return nil, err
	}
	if reason == "" {
		return nil, entitlements.Invalid(map[string]string{"reason": "a reason is required"})
	}
	return s.store.DecideEntitlement(ctx, id, by, false, s.MakerChecker, reason)
}

func (s *Service) logf(msg string, args ...any) {
	if s.Log != nil {
		s.Log.Info(msg, args...)
	}
}

// logc logs an event of the service with the context it was asked in, so the line
// names the request it was for (logctx).
func (s *Service) logc(ctx context.Context, msg string, args ...any) {
	if s.Log != nil {
		s.Log.InfoContext(ctx, msg, args...)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf("issuance: "+format, args...) }

// CheckTemplates refuses to run when a template version that has issued licenses was
// edited in place since: its fingerprint in the database no longer matches the code.
func (s *Service) CheckTemplates(ctx context.Context) error {
	var all []storage.TemplateVersion
	for _, t := range templates.All() {
		all = append(all, storage.TemplateVersion{Name: t.Name, Version: t.Version, Product: t.Product, Fingerprint: t.Fingerprint()})
	}
	changed, err := s.store.CheckTemplates(ctx, all)
	if err != nil {
		return err
	}
	if len(changed) > 0 {
		return entitlements.Errorf(entitlements.ECONFLICT, "template versions changed after they issued licenses: %v; restore them and add new versions instead", changed)
	}
	return nil
}

// ReviewOrder takes a refunded or disputed self-service order out of the staff queue,
// with a note (approvers and above).
func (s *Service) ReviewOrder(ctx context.Context, id, note string, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.RoleApprover, "reviewing an order"); err != nil {
		return err
	}
	if note == "" {
		return entitlements.Invalid(map[string]string{"note": "say what was decided"})
	}
	return s.store.ReviewOrder(ctx, id, note, by)
}

// MaxTokenLifetime bounds a personal access token; DefaultTokenLifetime is used when
// none is asked for.
const (
	MaxTokenLifetime     = 365 * 24 * time.Hour
	DefaultTokenLifetime = 90 * 24 * time.Hour
)

// CreateStaffToken makes a personal access token for the acting staff member (any
// role: the token acts with its owner's role), shown once.
func (s *Service) CreateStaffToken(ctx context.Context, name string, lifetime time.Duration, by *entitlements.Staff) (string, *entitlements.StaffToken, error) {
	if err := entitlements.Require(by, entitlements.RoleViewer, "making a token"); err != nil {
		return "", nil, err
	}
	if by.MustChangePassword {
		return "", nil, entitlements.Errorf(entitlements.EFORBIDDEN, "your password was set by an admin: choose your own in the console (Accounts), or sign in with issuer login --change-password, before making a token")
	}
	if lifetime == 0 {
		lifetime = DefaultTokenLifetime
	}
	f := map[string]string{}
	if name == "" || len(name) > 100 {
		f["name"] = "a name of 1 to 100 characters (where the token is used)"
	}
	if lifetime < time.Minute || lifetime > MaxTokenLifetime {
		f["expires"] = "a lifetime from a minute to a year"
	}
	if err := entitlements.Invalid(f); err != nil {
		return "", nil, err
	}
	return s.store.CreateStaffToken(ctx, by.ID, name, s.now().Add(lifetime).Truncate(time.Second), by.Email)
}

// RevokeStaffToken revokes one of the acting staff member's tokens (admins: anyone's).
func (s *Service) RevokeStaffToken(ctx context.Context, id string, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.RoleViewer, "revoking a token"); err != nil {
		return err
	}
	owner := by.ID
	if entitlements.Require(by, entitlements.NeedAdmin, "") == nil {
		owner = 0 // admins may revoke anyone's token
	}
	return s.store.RevokeStaffToken(ctx, owner, id, by.Email)
}

// CreateStaff adds a staff account (admins only). The very first account is made by
// the operator's `issuer staff create` bootstrap instead.
func (s *Service) CreateStaff(ctx context.Context, st *entitlements.Staff, password string, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.RoleAdmin, "creating staff accounts"); err != nil {
		return err
	}
	if err := entitlements.ValidateNewStaff(st, password); err != nil {
		return err
	}
	// An admin's account for someone else starts with the admin's password: it must
	// be changed at the first sign-in (the operator's bootstrap sets its own).
	st.MustChangePassword = true
	return s.store.CreateStaff(ctx, st, password, by.Email)
}

// UpdateStaff changes another account's role, state or password (admins only); an
// admin can't demote or disable themselves (someone must stay able to manage).
//
// revokeTokens also revokes every personal access token of the account (with a new
// password or a disable: sign out everywhere, and the CLI's tokens too).
func (s *Service) UpdateStaff(ctx context.Context, id int64, role *entitlements.Role, disabled *bool, password string, revokeTokens bool, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.RoleAdmin, "managing staff accounts"); err != nil {
		return err
	}
	if id == by.ID && (role != nil || disabled != nil) {
		return entitlements.Errorf(entitlements.ECONFLICT, "you can't change your own role or disable yourself: ask another admin")
	}
	if role != nil && !role.Valid() {
		return entitlements.Invalid(map[string]string{"role": "viewer, issuer, approver or admin"})
	}
	if password != "" {
		if err := entitlements.ValidatePassword(password); err != nil {
			return err
		}
	}
	return s.store.UpdateStaff(ctx, id, role, disabled, password, revokeTokens, by.Email)
}

// ChangeOwnPassword sets a new password for the acting staff member after checking the
// current one; their other sessions end.
// revokeTokens revokes the member's personal access tokens too (their sessions end
// anyway).
func (s *Service) ChangeOwnPassword(ctx context.Context, current, next, addr string, revokeTokens bool, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.RoleViewer, "changing your password"); err != nil {
		return err
	}
	if _, err := s.CheckPassword(ctx, by.Email, current, addr, "password-change"); entitlements.ErrorCode(err) == entitlements.EUNAUTHORIZED {
		return entitlements.Invalid(map[string]string{"current": "that is not your current password"})
	} else if err != nil {
		return err
	}
	if err := entitlements.ValidatePassword(next); err != nil {
		return err
	}
	if by.MustChangePassword && next == current {
		return entitlements.Invalid(map[string]string{"next": "choose a password of your own, not the one the admin set"})
	}
	return s.store.UpdateStaff(ctx, by.ID, nil, nil, next, revokeTokens, by.Email)
}
