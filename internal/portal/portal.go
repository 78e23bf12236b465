// Package portal is the customer side of the issuer: portal users who sign in by
// emailed one-time link, and the customer download API (customer-api.md). The portal
// pages and the API call the same methods, each with the Principal of the session or
// token, and every read goes through a storage call scoped by that principal's
// customer: one customer can never see another's anything, and a foreign ID answers
// exactly like a missing one.
package portal

import (
	"context"
	"encoding/base64"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/mail"
	"github.com/metrum/licensing/internal/ratelimit"
	"github.com/metrum/licensing/internal/storage"
)

// Config is what the portal's service is configured with.
type Config struct {
	Mailer mail.Mailer
	// BaseURL is how customers reach the issuer (sign-in links).
	BaseURL string
	Log     *slog.Logger
	// SignInLimit throttles sign-in link requests per address and per client (nil:
	// none). Over it, the answer is the same and no mail goes out.
	SignInLimit *ratelimit.Limiter
	// Releases is the verifier release customers download (nil: none published).
	Releases *Releases
}

// Service is the portal's and the customer API's business logic: every method takes
// the customer's Principal and reads through a storage call scoped by it.
type Service struct {
	Config
	store *storage.Store
	now   func() time.Time
}

// New is the portal service over a store.
func New(store *storage.Store, c Config) *Service { return &Service{Config: c, store: store} }

func (s *Service) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

func (s *Service) logf(msg string, args ...any) {
	if s.Log != nil {
		s.Log.Info(msg, args...)
	}
}

// logc logs with the context the service was asked in, so the line names its
// request (logctx).
func (s *Service) logc(ctx context.Context, msg string, args ...any) {
	if s.Log != nil {
		s.Log.InfoContext(ctx, msg, args...)
	}
}

// PageSize is the customer API's page (customer-api.md: 100 a page).
const PageSize = 100

// encodeCursor and decodeCursor make the opaque page cursor: the (issued_at, id) of
// the last row of a page.
func encodeCursor(l *entitlements.License) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(l.IssuedAt.UnixNano(), 10) + "~" + l.ID))
}

func decodeCursor(c string) (time.Time, string, error) {
	bad := entitlements.Invalid(map[string]string{"after": "not a cursor this API returned"})
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", bad
	}
	ts, id, ok := strings.Cut(string(raw), "~")
	nanos, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil || !entitlements.ValidID(entitlements.PrefixLicense, id) {
		return time.Time{}, "", bad
	}
	return time.Unix(0, nanos), id, nil
}

// Licenses returns a page of the principal's customer's licenses, newest first, and
// the cursor of the next page ("" on the last).
func (s *Service) Licenses(ctx context.Context, p *entitlements.Principal, after string, limit int) ([]*entitlements.License, string, error) {
	var at time.Time
	var id string
	if after != "" {
		var err error
		if at, id, err = decodeCursor(after); err != nil {
			return nil, "", err
		}
	}
	if limit <= 0 || limit > PageSize {
		limit = PageSize
	}
	list, err := s.store.CustomerLicenses(ctx, p.CustomerID, at, id, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(list) > limit {
		list = list[:limit]
		next = encodeCursor(list[limit-1])
	}
	return list, next, nil
}

// adviceWindow bounds how many of a customer's newest licenses the install advice
// reads: the current ones are always among them.
const adviceWindow = 500

// InstallAdvice says, for each line of the principal's customer's licenses, the one
// license to install now, or why there is none (the one status truth:
// entitlements.AdviseInstall).
func (s *Service) InstallAdvice(ctx context.Context, p *entitlements.Principal) ([]entitlements.InstallAdvice, error) {
	list, err := s.store.CustomerLicenses(ctx, p.CustomerID, time.Time{}, "", adviceWindow)
	if err != nil {
		return nil, err
	}
	return entitlements.AdviseInstall(list, s.clock()), nil
}

// LineAdvice is InstallAdvice for the line the license l belongs to (the newest of
// its renewals, replacements and top-ups); ok is false when the line is not shown.
func (s *Service) LineAdvice(ctx context.Context, p *entitlements.Principal, l *entitlements.License) (entitlements.InstallAdvice, bool, error) {
	list, err := s.store.CustomerLicenses(ctx, p.CustomerID, time.Time{}, "", adviceWindow)
	if err != nil {
		return entitlements.InstallAdvice{}, false, err
	}
	byID := map[string]*entitlements.License{}
	for _, x := range list {
		byID[x.ID] = x
	}
	head := l.ID
	for i := 0; i < len(list) && byID[head] != nil && byID[head].SupersededBy != "" && byID[byID[head].SupersededBy] != nil; i++ {
		head = byID[head].SupersededBy
	}
	for _, a := range entitlements.AdviseInstall(list, s.clock()) {
		if a.Head.ID == head {
			return a, true, nil
		}
	}
	return entitlements.InstallAdvice{}, false, nil
}

// License returns one of the principal's customer's licenses.
func (s *Service) License(ctx context.Context, p *entitlements.Principal, id string) (*entitlements.License, error) {
	if !entitlements.ValidID(entitlements.PrefixLicense, id) {
		return nil, entitlements.NotFound("license", id)
	}
	return s.store.CustomerLicense(ctx, p.CustomerID, id)
}

// Download returns one of a license's files (the exact stored signed bytes, the safe
// summary or the operator checklist) and records the delivery first: no file leaves
// without its record.
func (s *Service) Download(ctx context.Context, p *entitlements.Principal, licenseID, what string) (*entitlements.File, error) {
	l, err := s.License(ctx, p, licenseID)
	if err != nil {
		return nil, err
	}
	f, err := issuance.DeliveryFile(l, what)
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, p, l.ID, l.Product, what); err != nil {
		return nil, err
	}
	return f, nil
}

// Bundle returns the current revocation bundle of a product the principal's customer
// holds a license of, and records the delivery.
func (s *Service) Bundle(ctx context.Context, p *entitlements.Principal, licenseID string) (*entitlements.Bundle, error) {
	l, err := s.License(ctx, p, licenseID)
	if err != nil {
		return nil, err
	}
	b, err := s.store.GetBundle(ctx, l.Product, 0)
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, p, l.ID, l.Product, entitlements.WhatBundle); err != nil {
		return nil, err
	}
	return b, nil
}

func (s *Service) record(ctx context.Context, p *entitlements.Principal, licenseID, product, what string) error {
	return s.store.RecordDownload(ctx, &entitlements.Download{CustomerID: p.CustomerID, LicenseID: licenseID, Product: product,
		What: what, ActorKind: p.Kind, Actor: p.Actor, ClientAddr: p.Addr})
}

// Leases returns a license's lease slots.
func (s *Service) Leases(ctx context.Context, p *entitlements.Principal, licenseID string) ([]*entitlements.Lease, error) {
	if _, err := s.License(ctx, p, licenseID); err != nil {
		return nil, err
	}
	return s.store.CustomerLeases(ctx, p.CustomerID, licenseID)
}

// ReleaseLease releases one of a license's leases (lease-api.md v1.1 budget).
func (s *Service) ReleaseLease(ctx context.Context, p *entitlements.Principal, licenseID, leaseID string) (*entitlements.ReleaseResult, error) {
	if p.Kind == entitlements.PrincipalCustomerToken {
		return nil, errReadOnly
	}
	if !entitlements.ValidID(entitlements.PrefixLicense, licenseID) || !entitlements.ValidID(entitlements.PrefixLease, leaseID) {
		return nil, entitlements.NotFound("lease", leaseID)
	}
	res, err := s.store.ReleaseCustomerLease(ctx, p.CustomerID, licenseID, leaseID, actorOf(p))
	if err == nil && res.Released {
		s.logc(ctx, "lease released from the portal", "license_id", licenseID, "lease_id", leaseID, "freed", res.Freed)
	}
	return res, err
}

// RotateLeaseToken gives one of the customer's lease-required licenses a new lease
// token (returned once); the old one stops at once.
func (s *Service) RotateLeaseToken(ctx context.Context, p *entitlements.Principal, licenseID string) (string, error) {
	if p.Kind == entitlements.PrincipalCustomerToken {
		return "", errReadOnly
	}
	if !entitlements.ValidID(entitlements.PrefixLicense, licenseID) {
		return "", entitlements.NotFound("license", licenseID)
	}
	tok, hash, err := issuance.NewLeaseToken()
	if err != nil {
		return "", err
	}
	if err := s.store.RotateCustomerLeaseToken(ctx, p.CustomerID, licenseID, hash, actorOf(p)); err != nil {
		return "", err
	}
	return tok, nil
}

// errReadOnly: a customer API token reads; it never changes anything.
var errReadOnly = entitlements.Errorf(entitlements.EFORBIDDEN, "a customer API token can only read")

func actorOf(p *entitlements.Principal) string {
	switch p.Kind {
	case entitlements.PrincipalPortalUser:
		return "portal:" + p.Actor
	case entitlements.PrincipalCustomerToken:
		return "token:" + p.Actor
	}
	return p.Actor
}

// Tokens lists the customer's API tokens.
func (s *Service) Tokens(ctx context.Context, p *entitlements.Principal) ([]*entitlements.CustomerToken, error) {
	return s.store.ListCustomerTokens(ctx, p.CustomerID)
}

// CreateToken makes a customer API token (returned once). validFor 0: no expiry.
func (s *Service) CreateToken(ctx context.Context, p *entitlements.Principal, name string, validFor time.Duration) (string, *entitlements.CustomerToken, error) {
	if p.Kind == entitlements.PrincipalCustomerToken {
		return "", nil, errReadOnly
	}
	if validFor == 0 {
		validFor = entitlements.DefaultTokenLifetime
	}
	var exp *time.Time
	if validFor != entitlements.TokenNeverExpires {
		t := s.clock().Add(validFor).UTC().Truncate(time.Second)
		exp = &t
	}
	var owner int64
	if p.Kind == entitlements.PrincipalPortalUser {
		owner = p.UserID
	}
	return s.store.CreateCustomerToken(ctx, p.CustomerID, strings.TrimSpace(name), exp, actorOf(p), owner)
}

// RenewToken gives one of the customer's expiring tokens another default lifetime
// from now.
func (s *Service) RenewToken(ctx context.Context, p *entitlements.Principal, id string) (*entitlements.CustomerToken, error) {
	if p.Kind == entitlements.PrincipalCustomerToken {
		return nil, errReadOnly
	}
	if !entitlements.ValidID(entitlements.PrefixCustomerToken, id) {
		return nil, entitlements.NotFound("token", id)
	}
	return s.store.RenewCustomerToken(ctx, p.CustomerID, id, s.clock().Add(entitlements.DefaultTokenLifetime).UTC().Truncate(time.Second), actorOf(p))
}

// RevokeToken revokes one of the customer's tokens.
func (s *Service) RevokeToken(ctx context.Context, p *entitlements.Principal, id string) error {
	if p.Kind == entitlements.PrincipalCustomerToken {
		return errReadOnly
	}
	if !entitlements.ValidID(entitlements.PrefixCustomerToken, id) {
		return entitlements.NotFound("token", id)
	}
	return s.store.RevokeCustomerToken(ctx, p.CustomerID, id, actorOf(p))
}

// Authenticate turns a customer API token into its principal.
func (s *Service) Authenticate(ctx context.Context, token, addr string) (*entitlements.Principal, error) {
	if !strings.HasPrefix(token, entitlements.CustomerTokenPrefix) || len(token) > 128 {
		return nil, entitlements.ErrBadCustomerToken
	}
	t, err := s.store.AuthenticateCustomerToken(ctx, token)
	if err != nil {
		return nil, err
	}
	return &entitlements.Principal{CustomerID: t.CustomerID, Kind: entitlements.PrincipalCustomerToken, Actor: t.ID, Addr: addr}, nil
}

// StaffCreateToken makes a customer API token on a customer's behalf (issuers and
// above), returned once.
func (s *Service) StaffCreateToken(ctx context.Context, customerID, name string, validFor time.Duration, by *entitlements.Staff) (string, *entitlements.CustomerToken, error) {
	if err := entitlements.Require(by, entitlements.RoleIssuer, "creating a customer API token"); err != nil {
		return "", nil, err
	}
	p := &entitlements.Principal{CustomerID: customerID, Kind: entitlements.PrincipalStaff, Actor: by.Email}
	return s.CreateToken(ctx, p, name, validFor)
}

// StaffRevokeToken revokes a customer's token on its behalf.
func (s *Service) StaffRevokeToken(ctx context.Context, customerID, id string, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.RoleIssuer, "revoking a customer API token"); err != nil {
		return err
	}
	return s.RevokeToken(ctx, &entitlements.Principal{CustomerID: customerID, Kind: entitlements.PrincipalStaff, Actor: by.Email}, id)
}

// Customer returns the principal's own customer record.
func (s *Service) Customer(ctx context.Context, p *entitlements.Principal) (*entitlements.Customer, error) {
	if p == nil {
		return nil, entitlements.Errorf(entitlements.EUNAUTHORIZED, "not signed in")
	}
	return s.store.GetCustomer(ctx, p.CustomerID)
}

// HasBundle reports whether a product has a published revocation bundle to offer.
func (s *Service) HasBundle(ctx context.Context, product string) bool {
	_, err := s.store.GetBundle(ctx, product, 0)
	return err == nil
}
