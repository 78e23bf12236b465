package issuance

import (
	"context"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/templates"
)

// CreateSuccessor opens a draft entitlement that supersedes an issued license. It goes
// through approval like any other (maker-checker), and issuing it marks the old
// license superseded after the changeover. One open successor per license, enforced
// by the database; a second one is a conflict naming the open one.
func (s *Service) CreateSuccessor(ctx context.Context, in entitlements.SuccessorInput, by *entitlements.Staff) (*entitlements.Entitlement, error) {
	if err := entitlements.Require(by, entitlements.RoleIssuer, "opening a renewal, replacement or top-up"); err != nil {
		return nil, err
	}
	t, e, err := s.prepareSuccessor(ctx, in, by)
	if err != nil {
		return nil, err
	}
	return s.openEntitlement(ctx, t, e)
}

// prepareSuccessor builds the successor entitlement CreateSuccessor would open (not
// stored, not yet checked against its template).
func (s *Service) prepareSuccessor(ctx context.Context, in entitlements.SuccessorInput, by *entitlements.Staff) (*templates.Template, *entitlements.Entitlement, error) {
	l, err := s.store.GetLicense(ctx, in.LicenseID)
	if err != nil {
		return nil, nil, err
	}
	if err := l.CanOpenSuccessor(in.Kind, s.now()); err != nil {
		return nil, nil, err
	}
	// The database's unique index decides a race; this names the open one first.
	if open, err := s.store.OpenSuccessor(ctx, l.ID); err == nil {
		return nil, nil, entitlements.OpenSuccessorConflict(l.ID, open)
	} else if entitlements.ErrorCode(err) != entitlements.ENOTFOUND {
		return nil, nil, err
	}
	prev, err := s.store.GetEntitlement(ctx, l.EntitlementID)
	if err != nil {
		return nil, nil, err
	}
	now := s.now().Truncate(time.Second)
	e := &entitlements.Entitlement{CustomerID: l.CustomerID, Product: l.Product, Kind: in.Kind, Supersedes: l.ID,
		InstanceFingerprint: l.Terms.InstanceFingerprint, ContractRef: prev.ContractRef, Source: in.Source, CreatedBy: by.Email,
		OrderID: in.OrderID, Reason: strings.TrimSpace(in.Reason), CustomerName: l.CustomerName}
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
		return nil, nil, entitlements.Invalid(map[string]string{"changeover": "must be ≥ 0"})
	}
	e.ChangeoverSeconds = int64(changeover / time.Second)

	var t *templates.Template
	switch in.Kind {
	case entitlements.KindRenewal:
		// A renewal renews the line's plan: a credit pack's license renews the plan it
		// topped up, with that plan's overrides (the pack's budget was for the term).
		plan, err := s.planOf(ctx, l)
		if err != nil {
			return nil, nil, err
		}
		name := in.Template
		if name == "" {
			name = plan.SKU
		}
		if t, err = templates.Latest(name); err != nil {
			return nil, nil, err
		}
		if name == plan.SKU {
			planEnt := prev
			if plan.ID != l.ID {
				if planEnt, err = s.store.GetEntitlement(ctx, plan.EntitlementID); err != nil {
					return nil, nil, err
				}
			}
			e.Overrides = planEnt.Overrides
		}
		e.StartsAt = now
		if t.FixedTerm {
			e.EndsAt = now.Add(t.Term)
		} else {
			e.EndsAt = later(now, l.ExpiresAt).Add(t.Term)
		}
	case entitlements.KindReplacement:
		if t, err = templates.Get(prev.TemplateName, prev.TemplateVersion); err != nil {
			return nil, nil, err
		}
		e.Overrides, e.StartsAt, e.EndsAt = prev.Overrides, prev.StartsAt, l.ExpiresAt
	case entitlements.KindTopUp:
		if in.Template == "" {
			return nil, nil, entitlements.Invalid(map[string]string{"template": "name the credit pack, e.g. credit-pack-5m"})
		}
		if t, err = templates.Latest(in.Template); err != nil {
			return nil, nil, err
		}
		if !t.Inherit {
			return nil, nil, entitlements.Invalid(map[string]string{"template": in.Template + " is not a credit pack"})
		}
		e.StartsAt, e.EndsAt = now, l.ExpiresAt
	default:
		return nil, nil, entitlements.Invalid(map[string]string{"kind": "renewal, replacement or top-up"})
	}
	e.TemplateName, e.TemplateVersion = t.Name, t.Version
	if t.Product != l.Product {
		return nil, nil, entitlements.Invalid(map[string]string{"template": t.Name + " is for " + t.Product + ", the license is " + l.Product})
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
	return t, e, nil
}

// maxLine bounds a walk along a line of licenses (a corrupt cycle can't loop).
const maxLine = 1000

// PlanOf returns the license whose template a line renews: l itself, or, for a
// credit pack's license, the nearest license it topped up that is not a pack.
func (s *Service) PlanOf(ctx context.Context, l *entitlements.License, by *entitlements.Staff) (*entitlements.License, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading a license"); err != nil {
		return nil, err
	}
	return s.planOf(ctx, l)
}

func (s *Service) planOf(ctx context.Context, l *entitlements.License) (*entitlements.License, error) {
	for range maxLine {
		t, err := templates.Get(l.SKU, l.TemplateVersion)
		if err != nil || !t.Inherit || l.Supersedes == "" {
			return l, nil
		}
		if l, err = s.store.GetLicense(ctx, l.Supersedes); err != nil {
			return nil, err
		}
	}
	return nil, errorf("the line of license %s is longer than %d licenses", l.ID, maxLine)
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
// the run does not stop on one failure. o's ItemDeadline bounds each renewal.
func (s *Service) RenewExpiring(ctx context.Context, product string, within time.Duration, by *entitlements.Staff, progress func(RenewalProgress), o ...BulkOptions) (opened int, err error) {
	if err := entitlements.Require(by, entitlements.RoleIssuer, "opening renewals"); err != nil {
		return 0, err
	}
	list, err := s.store.ListLicenses(ctx, entitlements.LicenseFilter{Product: product, ExpiringBefore: s.now().Add(within), Limit: 500})
	if err != nil {
		return 0, err
	}
	var item time.Duration // each renewal's own deadline (BulkOptions.ItemDeadline)
	if len(o) > 0 {
		item = o[0].ItemDeadline
	}
	for i, l := range list {
		e, err := s.renewOne(ctx, item, l.ID, by)
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

// ChangeStatus revokes, suspends or reinstates a license, with a reason, and applies
// the chain rule (ChangeStatusWith without Only). A revocation or suspension takes
// effect in revocation bundles at effectiveAt (zero: now).
func (s *Service) ChangeStatus(ctx context.Context, licenseID, action, reason string, effectiveAt time.Time, by *entitlements.Staff) (*entitlements.License, error) {
	res, err := s.ChangeStatusWith(ctx, entitlements.StatusChange{LicenseID: licenseID, Action: action, Reason: reason, EffectiveAt: effectiveAt}, by)
	if err != nil {
		return nil, err
	}
	return res.License, nil
}

// ChangeStatusWith revokes, suspends or reinstates a license. Revoking or suspending
// also blocks, at the same time, each predecessor still inside its changeover, unless
// c.Only (docs/lifecycle.md, "Chain revocation"); reinstating puts back the
// predecessors blocked with it.
func (s *Service) ChangeStatusWith(ctx context.Context, c entitlements.StatusChange, by *entitlements.Staff) (*entitlements.StatusChangeResult, error) {
	if c.EffectiveAt.IsZero() {
		c.EffectiveAt = s.now()
	}
	c.EffectiveAt = c.EffectiveAt.UTC().Truncate(time.Second)
	res, err := s.store.ChangeLicenseStatus(ctx, c, by)
	if err != nil {
		return nil, err
	}
	chained := make([]string, 0, len(res.Chained))
	for _, l := range res.Chained {
		chained = append(chained, l.ID)
	}
	s.logc(ctx, "license status changed", "license_id", res.License.ID, "action", c.Action, "status", res.License.Status,
		"chained", strings.Join(chained, " "), "actor", by.Email)
	return res, nil
}

// StatusChainPreview says what a revoke or suspend of a license would block now: the
// license and the predecessors the chain rule blocks with it (blocked), and the
// predecessors that keep working until their changeover ends when only this license
// is changed (spared, with their StatusEffectiveAt). It is the confirmation of the
// change, so it needs the role the change needs: a viewer never fills in a revoke
// form only to be refused on submit.
func (s *Service) StatusChainPreview(ctx context.Context, licenseID, action string, by *entitlements.Staff) (l *entitlements.License, blocked []*entitlements.License, err error) {
	if err := entitlements.Require(by, entitlements.NeedApprove, "revoking, suspending or reinstating a license"); err != nil {
		return nil, nil, err
	}
	l, chain, err := s.store.StatusChainPreview(ctx, licenseID, s.now())
	if err != nil {
		return nil, nil, err
	}
	if action == entitlements.ActionReinstate {
		for _, p := range chain {
			if p.BlockedWith == l.ID && p.Status == entitlements.LicenseSuspended {
				blocked = append(blocked, p)
			}
		}
		return l, blocked, nil
	}
	return l, entitlements.ChainToBlock(chain, s.now()), nil
}

// RestorePrevious lifts the supersession of a refunded or disputed successor: the
// license it replaced is active again (approver; docs/lifecycle.md).
func (s *Service) RestorePrevious(ctx context.Context, successorID, reason string, by *entitlements.Staff) (*entitlements.License, error) {
	if err := entitlements.Require(by, entitlements.RoleApprover, "restoring a previous license"); err != nil {
		return nil, err
	}
	l, err := s.store.RestorePrevious(ctx, successorID, strings.TrimSpace(reason), by)
	if err != nil {
		return nil, err
	}
	s.logc(ctx, "previous license restored", "license_id", l.ID, "successor", successorID, "actor", by.Email)
	return l, nil
}

// Expiring lists active licenses that end within d, soonest first.
func (s *Service) Expiring(ctx context.Context, product string, d time.Duration, limit int) ([]*entitlements.License, error) {
	return s.store.ListLicenses(ctx, entitlements.LicenseFilter{Product: product, ExpiringBefore: s.now().Add(d), Limit: limit})
}

func (s *Service) renewOne(ctx context.Context, deadline time.Duration, licenseID string, by *entitlements.Staff) (*entitlements.Entitlement, error) {
	if deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, deadline)
		defer cancel()
	}
	return s.CreateSuccessor(ctx, entitlements.SuccessorInput{Kind: entitlements.KindRenewal, LicenseID: licenseID}, by)
}
