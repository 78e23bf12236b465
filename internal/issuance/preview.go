package issuance

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/templates"
)

// previewLicenseID stands for the license ID in a preview: a new one is made when
// the license is issued.
const previewLicenseID = "lic_(assigned when issued)"

// PreviewEntitlement renders the license an entitlement would issue with its
// template's own code (templates Terms and Render), without signing: what the
// approver approves, beside the template's defaults and the customer's licenses.
func (s *Service) PreviewEntitlement(ctx context.Context, id string, by *entitlements.Staff) (*entitlements.Preview, error) {
	e, err := s.GetEntitlement(ctx, id, by)
	if err != nil {
		return nil, err
	}
	return s.preview(ctx, e)
}

// PreviewSuccessor is the renewal, replacement or top-up CreateSuccessor would open,
// rendered like PreviewEntitlement, for the confirmation before the draft is opened.
// It is refused exactly as CreateSuccessor would refuse it.
func (s *Service) PreviewSuccessor(ctx context.Context, in entitlements.SuccessorInput, by *entitlements.Staff) (*entitlements.Preview, error) {
	if err := entitlements.Require(by, entitlements.RoleIssuer, "opening a renewal, replacement or top-up"); err != nil {
		return nil, err
	}
	t, e, err := s.prepareSuccessor(ctx, in, by)
	if err != nil {
		return nil, err
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if err := t.CheckEntitlement(e); err != nil {
		return nil, err
	}
	return s.preview(ctx, e)
}

func (s *Service) preview(ctx context.Context, e *entitlements.Entitlement) (*entitlements.Preview, error) {
	t, err := templates.Get(e.TemplateName, e.TemplateVersion)
	if err != nil {
		return nil, err
	}
	c, err := s.store.GetCustomer(ctx, e.CustomerID)
	if err != nil {
		return nil, err
	}
	p := &entitlements.Preview{Entitlement: e, CustomerName: c.Name, TemplateTerm: t.Term, FixedTerm: t.FixedTerm, Form: t.Form()}
	if e.ApprovedCustomerName != "" {
		p.CustomerName = e.ApprovedCustomerName
	}
	in := templates.Input{LicenseID: previewLicenseID, Issuer: s.Issuer, CustomerName: p.CustomerName, IssuedAt: s.now(), RenewURL: s.RenewURL}
	if e.Supersedes != "" {
		if p.Base, err = s.store.GetLicense(ctx, e.Supersedes); err != nil {
			return nil, err
		}
		in.Base = &p.Base.Terms
	}
	if p.Existing, err = s.store.ListLicenses(ctx, entitlements.LicenseFilter{CustomerID: e.CustomerID, Limit: 20}); err != nil {
		return nil, err
	}
	def, err := t.Terms(&entitlements.Entitlement{}, in.Base)
	if err != nil {
		return nil, err
	}
	p.Defaults = *def
	terms, err := t.Terms(e, in.Base)
	if err != nil {
		return nil, err
	}
	p.Terms = *terms
	if terms.LeaseTTLSeconds > 0 {
		p.RenewURL = s.RenewURL
	}
	var rendered any
	switch t.Form() {
	case templates.FormEnvelope:
		rendered, _, err = t.Render(e, in)
	case templates.FormJWS:
		in.Issuer = s.coreSDKIssuer()
		rendered, _, err = t.RenderJWS(e, in)
	}
	if err != nil {
		p.Problem = problemText(err)
		return p, nil
	}
	if p.Payload, err = json.Marshal(rendered, jsontext.WithIndent("  ")); err != nil {
		return nil, errorf("preview payload: %w", err)
	}
	return p, nil
}

// problemText is an error's safe message with its field messages, for a page.
func problemText(err error) string {
	msg := entitlements.ErrorMessage(err)
	var de *entitlements.Error
	if errors.As(err, &de) && de.Code == entitlements.EINVALID && len(de.Fields) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(de.Fields)) {
			parts = append(parts, k+": "+de.Fields[k])
		}
		msg = strings.Join(parts, "; ")
	}
	return msg
}
