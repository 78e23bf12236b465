package issuance

import (
	"context"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/templates"
)

// CreateEntitlement opens a draft from the newest version of a template, checked
// against what the template allows.
func (s *Service) CreateEntitlement(ctx context.Context, in entitlements.EntitlementInput, by *entitlements.Staff) (*entitlements.Entitlement, error) {
	if err := entitlements.Require(by, entitlements.RoleIssuer, "creating an entitlement"); err != nil {
		return nil, err
	}
	t, err := templates.Latest(in.Template)
	if err != nil {
		return nil, err
	}
	if in.StartsAt.IsZero() {
		in.StartsAt = s.now()
	}
	in.StartsAt = in.StartsAt.UTC().Truncate(time.Second)
	if in.EndsAt.IsZero() {
		in.EndsAt = in.StartsAt.Add(t.Term)
	}
	if in.Source == "" {
		in.Source = entitlements.SourceStaff
	}
	e := &entitlements.Entitlement{
		CustomerID: in.CustomerID, Product: t.Product, TemplateName: t.Name, TemplateVersion: t.Version,
		StartsAt: in.StartsAt, EndsAt: in.EndsAt.UTC().Truncate(time.Second), Overrides: in.Overrides,
		InstanceFingerprint: in.InstanceFingerprint, ContractRef: strings.TrimSpace(in.ContractRef), Source: in.Source,
		Kind: entitlements.KindNew, CreatedBy: by.Email, OrderID: in.OrderID, Reason: strings.TrimSpace(in.Reason),
	}
	return s.openEntitlement(ctx, t, e)
}

// openEntitlement stores a draft once it is valid on its own and within what its
// template allows: the one path by which every entitlement (new, renewal,
// replacement, top-up) is opened.
func (s *Service) openEntitlement(ctx context.Context, t *templates.Template, e *entitlements.Entitlement) (*entitlements.Entitlement, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if err := t.CheckEntitlement(e); err != nil {
		return nil, err
	}
	if err := s.store.CreateEntitlement(ctx, e); err != nil {
		return nil, err
	}
	return e, nil
}
