package staffweb

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	"github.com/metrum/licensing/internal/templates"
	pages "github.com/metrum/licensing/web/staff"
	"github.com/metrum/licensing/web/ui"
)

// templateChoice is a template with everything it sets by default, in words.
func templateChoice(t *templates.Template) pages.StaffTemplateChoice {
	tc := pages.StaffTemplateChoice{Name: t.Name, Product: t.Product, Summary: t.Summary, Version: ui.Itoa(t.Version), Term: termText(t),
		Features: ui.Features(t.Features), FeatureChoices: ui.Features(t.AllowedFeatures), Limits: ui.Limits(t.Limits),
		Grace: ui.GraceText(int64(t.Grace / time.Second)), Lease: "not required: works offline"}
	if !t.FixedTerm {
		tc.TermDays, tc.MaxTermDays = int(t.Term/templates.Day), int(t.MaxTerm/templates.Day)
	}
	if t.MaxGrace > 0 {
		tc.GraceHours, tc.MaxGraceHours = int64(t.Grace/time.Hour), int64(t.MaxGrace/time.Hour)
	}
	if t.Lease != nil && t.Lease.Required {
		tc.Lease = ui.LeaseText(t.Lease.TTLSeconds)
	}
	for _, l := range t.OverridableLimits {
		f := pages.LimitField{Wire: l, Name: ui.LimitName(l), Default: "unlimited", Required: slices.Contains(t.RequiredLimits, l)}
		if d, ok := t.Limits[l]; ok {
			f.Default = ui.LimitText(l, d)
		}
		tc.LimitFields = append(tc.LimitFields, f)
	}
	return tc
}

// newEntitlementForm builds the form for a template: every template with its
// defaults (the table), and for the chosen one its fields with the defaults beside
// them, the template's own features ticked. Only what the template allows is a field.
func newEntitlementForm(customer, tmpl string) (pages.StaffNewEntitlement, *templates.Template) {
	v := pages.StaffNewEntitlement{CustomerQuery: customer, ChosenFeatures: map[string]bool{}, Limits: map[string]string{}, Errors: map[string]string{}}
	if entitlements.ValidID(entitlements.PrefixCustomer, customer) {
		v.CustomerID = customer
	}
	for _, t := range templates.List() {
		if !t.Inherit { // credit packs are top-ups of a license, from its page
			v.Templates = append(v.Templates, templateChoice(t))
		}
	}
	if tmpl == "" {
		return v, nil
	}
	t, err := templates.Latest(tmpl)
	if err != nil || t.Inherit {
		v.Errors["form"] = "choose a template from the list"
		return v, nil
	}
	tc := templateChoice(t)
	v.Template, v.T = t.Name, &tc
	for _, f := range t.Features {
		v.ChosenFeatures[f] = true
	}
	return v, t
}

// resolveCustomer finds the customer the form names: by ID, or by a name (or email,
// contract reference…) that matches one customer; several matches are offered.
func (s *Handler) resolveCustomer(c echo.Context, v *pages.StaffNewEntitlement) error {
	ctx, by := c.Request().Context(), httpx.Staff(c)
	q := strings.TrimSpace(v.CustomerQuery)
	if q == "" {
		return nil
	}
	if entitlements.ValidID(entitlements.PrefixCustomer, q) {
		cu, err := s.Svc.GetCustomer(ctx, q, by)
		if entitlements.ErrorCode(err) == entitlements.ENOTFOUND {
			v.CustomerID, v.Errors["customer"] = "", "no customer has this ID"
			return nil
		}
		if err != nil {
			return err
		}
		v.CustomerID, v.CustomerName = cu.ID, cu.Name
		return nil
	}
	list, err := s.Svc.SearchCustomers(ctx, entitlements.CustomerQuery{Text: q, Sort: entitlements.Sort{Key: "name"}, Limit: 10}, by)
	if err != nil {
		return err
	}
	switch len(list) {
	case 0:
		v.Errors["customer"] = "no customer matches “" + q + "”: add it on the Customers page first"
	case 1:
		v.CustomerID, v.CustomerName, v.CustomerQuery = list[0].ID, list[0].Name, list[0].ID
	default:
		v.Matches = list
		v.Errors["customer"] = "several customers match: choose one"
	}
	return nil
}

func (s *Handler) staffNewEntitlement(c echo.Context) error {
	v, _ := newEntitlementForm(strings.TrimSpace(c.QueryParam("customer")), c.QueryParam("template"))
	if err := s.resolveCustomer(c, &v); err != nil {
		return err
	}
	status := http.StatusOK
	if len(v.Errors) > 0 {
		status = http.StatusUnprocessableEntity
	}
	return httpx.Render(c, status, pages.StaffNewEntitlementForm(s.page(c, "New entitlement"), v))
}

// staffCreateEntitlement opens a draft; a refusal re-renders the form (422) with the
// messages beside the fields and the input kept.
func (s *Handler) staffCreateEntitlement(c echo.Context) error {
	v, t := newEntitlementForm(strings.TrimSpace(c.FormValue("customer")), c.FormValue("template"))
	refused := func() error {
		return httpx.Render(c, http.StatusUnprocessableEntity, pages.StaffNewEntitlementForm(s.page(c, "New entitlement"), v))
	}
	if err := s.resolveCustomer(c, &v); err != nil {
		return err
	}
	if t == nil || v.CustomerID == "" {
		if v.Errors["customer"] == "" && v.CustomerID == "" {
			v.Errors["customer"] = "choose the customer"
		}
		return refused()
	}
	form, _ := c.FormParams()
	in := decodeEntitlementForm(form, t, &v, s.now())
	if len(v.Errors) > 0 {
		return refused()
	}
	e, err := s.Svc.CreateEntitlement(c.Request().Context(), in, httpx.Staff(c))
	var de *entitlements.Error
	if errors.As(err, &de) && (de.Code == entitlements.EINVALID || de.Code == entitlements.ENOTFOUND) {
		for k, m := range de.Fields {
			switch k {
			case "customer_id":
				v.Errors["customer"] = m
			case "features", "limits", "grace_period_seconds", "ends_at", "starts_at", "instance_fingerprint", "contract_ref", "reason":
				v.Errors[k] = m
			default:
				v.Errors["form"] = strings.TrimSpace(v.Errors["form"] + " " + k + ": " + m)
			}
		}
		if m := v.Errors["starts_at"]; m != "" {
			v.Errors["ends_at"] = m
		}
		if v.Errors["grace_period_seconds"] != "" && t.MaxGrace > 0 { // the form asks in hours
			v.Errors["grace_period_seconds"] = "grace must be 0 to " + ui.Count(int64(t.MaxGrace/time.Hour)) + " hours (" + ui.Duration(t.MaxGrace) + ")"
		}
		if len(de.Fields) == 0 {
			v.Errors["form"] = de.Message
		}
		return refused()
	}
	if err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/entitlements/"+e.ID, "Draft "+e.ID+" opened for "+v.CustomerName+": another approver approves it next.")
}
