package staffweb

import (
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	pages "github.com/metrum/licensing/web/staff"
	"github.com/metrum/licensing/web/ui"
)

// previewView is a preview in words: the terms, where they differ from the
// template's (the term's length too), and the customer's licenses.
func previewView(p *entitlements.Preview, now time.Time) pages.PreviewView {
	e := p.Entitlement
	term := e.EndsAt.Sub(e.StartsAt)
	v := pages.PreviewView{CustomerName: p.CustomerName, CustomerID: e.CustomerID, Product: e.Product, SKU: e.TemplateName,
		Version: ui.Itoa(e.TemplateVersion), NotBefore: ui.Day(e.StartsAt), ExpiresAt: ui.Day(e.EndsAt), Term: ui.About(term),
		Terms: ui.TermsOf(p.Terms), Changes: ui.Changes(p.Defaults, p.Terms), Payload: string(p.Payload), Problem: p.Problem,
		RenewURL: p.RenewURL, BaseID: e.Supersedes}
	// A renewal starts now and adds its term to what is left of the license it renews
	// (a fixed-term one: from now); a replacement or top-up carries the license's end
	// date, shorter than the template's term by design.
	added := term
	if e.Kind == entitlements.KindRenewal && p.Base != nil && !p.FixedTerm && p.Base.ExpiresAt.After(e.StartsAt) {
		added = e.EndsAt.Sub(p.Base.ExpiresAt)
		v.Term += ": " + ui.About(added) + " after the current expiry " + ui.Day(p.Base.ExpiresAt)
	}
	if e.Kind == entitlements.KindNew || e.Kind == entitlements.KindRenewal {
		if c := ui.TermChange(added.Round(time.Minute), p.TemplateTerm); c != nil {
			c.Now, c.Default = ui.About(added), ui.About(p.TemplateTerm)
			v.Changes = append([]ui.Change{*c}, v.Changes...)
		}
	}
	for _, l := range p.Existing {
		st := l.StateAt(now)
		v.Existing = append(v.Existing, pages.PreviewLicense{ID: l.ID, SKU: l.SKU, Status: st.Status, StatusLabel: st.Label(),
			ExpiresAt: ui.Day(l.ExpiresAt), ContractRef: l.ContractRef, Replaced: l.ID == e.Supersedes})
	}
	return v
}
