package issuance

import (
	"context"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/templates"
)

// SuccessorInput opens a renewal, replacement or top-up of an issued license. Unset
// fields keep the license's own values.
type SuccessorInput struct {
	Kind      string // entitlements.KindRenewal, KindReplacement or KindTopUp
	LicenseID string
	// Template: a renewal may move to another template of the product (default: the
	// same one, newest version); a top-up names its credit pack (required); a
	// replacement always keeps the exact template version, so it changes only what
	// it is asked to.
	Template            string
	StartsAt, EndsAt    time.Time
	Overrides           *entitlements.Overrides
	InstanceFingerprint *string
	ContractRef         string
	Source              string
	// Changeover: how long the old license keeps working after the new one is issued
	// (nil: the service default).
	Changeover *time.Duration
	// OrderID: a self-service order's successor (see EntitlementInput.OrderID).
	OrderID string
}

// CreateSuccessor opens a draft entitlement that supersedes an issued license. It goes
// through approval like any other (maker-checker), and issuing it marks the old
// license superseded after the changeover. One open successor per license, enforced
// by the database.
func (s *Service) CreateSuccessor(ctx context.Context, in SuccessorInput, by *entitlements.Staff) (*entitlements.Entitlement, error) {
	if err := require(by, entitlements.RoleIssuer, "opening a renewal, replacement or top-up"); err != nil {
		return nil, err
	}
	l, err := s.Store.GetLicense(ctx, in.LicenseID)
	if err != nil {
		return nil, err
	}
	if l.Status == entitlements.LicenseSuspended {
		// Issuing a successor would mark it superseded with a changeover, which would
		// quietly lift the suspension for that long.
		return nil, entitlements.Errorf(entitlements.ECONFLICT, "license %s is suspended (%s): reinstate it first, then renew, replace or top it up", l.ID, l.StatusReason)
	}
	if l.SupersededBy != "" || l.Status != entitlements.LicenseActive {
		return nil, entitlements.Errorf(entitlements.ECONFLICT, "license %s is %s and can't be renewed, replaced or topped up", l.ID, l.Status)
	}
	prev, err := s.Store.GetEntitlement(ctx, l.EntitlementID)
	if err != nil {
		return nil, err
	}
	now := s.now().Truncate(time.Second)
	e := &entitlements.Entitlement{CustomerID: l.CustomerID, Product: l.Product, Kind: in.Kind, Supersedes: l.ID,
		InstanceFingerprint: l.Terms.InstanceFingerprint, ContractRef: prev.ContractRef, Source: in.Source, CreatedBy: by.Email,
		OrderID: in.OrderID}
	if in.ContractRef != "" {
		e.ContractRef = in.ContractRef
	}
	if e.Source == "" {
		e.Source = entitlements.SourceStaff
	}
	if in.InstanceFingerprint != nil {
		e.InstanceFingerprint = *in.InstanceFingerprint
	}
	changeover := s.Changeover
	if in.Changeover != nil {
		changeover = *in.Changeover
	}
	if changeover < 0 {
		return nil, entitlements.Invalid(map[string]string{"changeover": "must be ≥ 0"})
	}
	e.ChangeoverSeconds = int64(changeover / time.Second)

	var t *templates.Template
	switch in.Kind {
	case entitlements.KindRenewal:
		name := in.Template
		if name == "" {
			name = l.SKU
		}
		if t, err = templates.Latest(name); err != nil {
			return nil, err
		}
		if name == l.SKU {
			e.Overrides = prev.Overrides
		}
		e.StartsAt = now
		if t.FixedTerm {
			e.EndsAt = now.Add(t.Term)
		} else {
			e.EndsAt = later(now, l.ExpiresAt).Add(t.Term)
		}
	case entitlements.KindReplacement:
		if t, err = templates.Get(prev.TemplateName, prev.TemplateVersion); err != nil {
			return nil, err
		}
		e.Overrides, e.StartsAt, e.EndsAt = prev.Overrides, prev.StartsAt, l.ExpiresAt
		if !l.ExpiresAt.After(now) {
			return nil, entitlements.Errorf(entitlements.ECONFLICT, "license %s has expired: renew it instead", l.ID)
		}
	case entitlements.KindTopUp:
		if in.Template == "" {
			return nil, entitlements.Invalid(map[string]string{"template": "name the credit pack, e.g. credit-pack-5m"})
		}
		if t, err = templates.Latest(in.Template); err != nil {
			return nil, err
		}
		if !t.Inherit {
			return nil, entitlements.Invalid(map[string]string{"template": in.Template + " is not a credit pack"})
		}
		if !l.ExpiresAt.After(now) {
			return nil, entitlements.Errorf(entitlements.ECONFLICT, "license %s has expired: renew it, then top up", l.ID)
		}
		e.StartsAt, e.EndsAt = now, l.ExpiresAt
	default:
		return nil, entitlements.Invalid(map[string]string{"kind": "renewal, replacement or top-up"})
	}
	e.TemplateName, e.TemplateVersion = t.Name, t.Version
	if t.Product != l.Product {
		return nil, entitlements.Invalid(map[string]string{"template": t.Name + " is for " + t.Product + ", the license is " + l.Product})
	}
	if in.Overrides != nil {
		e.Overrides = *in.Overrides
	}
	if !in.StartsAt.IsZero() {
		e.StartsAt = in.StartsAt.UTC().Truncate(time.Second)
	}
	if !in.EndsAt.IsZero() {
		e.EndsAt = in.EndsAt.UTC().Truncate(time.Second)
	}
	return s.openEntitlement(ctx, t, e)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// RenewalProgress reports one license of a batch renewal.
type RenewalProgress struct {
	N, Of       int
	LicenseID   string
	Entitlement *entitlements.Entitlement // nil when skipped or failed
	Err         error
}

// RenewExpiring opens a renewal draft for every active license of product (all
// products when "") that expires before now+within, in expiry order, calling progress
// after each. A license that already has an open successor is reported and skipped;
// the run does not stop on one failure.
func (s *Service) RenewExpiring(ctx context.Context, product string, within time.Duration, by *entitlements.Staff, progress func(RenewalProgress)) (opened int, err error) {
	if err := require(by, entitlements.RoleIssuer, "opening renewals"); err != nil {
		return 0, err
	}
	list, err := s.Store.ListLicenses(ctx, entitlements.LicenseFilter{Product: product, ExpiringBefore: s.now().Add(within), Limit: 500})
	if err != nil {
		return 0, err
	}
	for i, l := range list {
		e, err := s.CreateSuccessor(ctx, SuccessorInput{Kind: entitlements.KindRenewal, LicenseID: l.ID}, by)
		if err == nil {
			opened++
		}
		if progress != nil {
			progress(RenewalProgress{N: i + 1, Of: len(list), LicenseID: l.ID, Entitlement: e, Err: err})
		}
		if ctx.Err() != nil {
			return opened, ctx.Err()
		}
	}
	return opened, nil
}

// ChangeStatus revokes, suspends or reinstates a license, with a reason. A revocation
// or suspension takes effect in revocation bundles at effectiveAt (zero: now).
func (s *Service) ChangeStatus(ctx context.Context, licenseID, action, reason string, effectiveAt time.Time, by *entitlements.Staff) (*entitlements.License, error) {
	if effectiveAt.IsZero() {
		effectiveAt = s.now()
	}
	l, err := s.Store.ChangeLicenseStatus(ctx, licenseID, action, reason, effectiveAt.UTC().Truncate(time.Second), by)
	if err != nil {
		return nil, err
	}
	s.logf("license status changed", "license_id", l.ID, "action", action, "status", l.Status, "actor", by.Email)
	return l, nil
}

// Expiring lists active licenses that end within d, soonest first.
func (s *Service) Expiring(ctx context.Context, product string, d time.Duration, limit int) ([]*entitlements.License, error) {
	return s.Store.ListLicenses(ctx, entitlements.LicenseFilter{Product: product, ExpiringBefore: s.now().Add(d), Limit: limit})
}
