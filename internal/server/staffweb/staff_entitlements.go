package staffweb

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	"github.com/metrum/licensing/internal/templates"
	pages "github.com/metrum/licensing/web/staff"
)

func (s *Handler) staffEntitlementRoutes(a *echo.Group) {
	a.GET("/entitlements", s.staffEntitlements)
	a.GET("/entitlements/new", s.staffNewEntitlement)
	a.POST("/entitlements", s.staffCreateEntitlement)
	a.GET("/entitlements/:id", s.staffEntitlement)
	a.POST("/entitlements/:id/approve", s.staffApprove)
	a.POST("/entitlements/:id/reject", s.staffReject)
	a.POST("/entitlements/:id/cancel", s.staffCancel)
	a.POST("/entitlements/:id/issue", s.staffIssue)
}

func (s *Handler) staffEntitlements(c echo.Context) error {
	state := c.QueryParam("state")
	switch state {
	case "":
		state = entitlements.StateDraft
	case "all":
		state = ""
	}
	f := entitlements.EntitlementFilter{State: state, BeforeID: c.QueryParam("before"), Limit: pageSize + 1}
	list, err := s.Svc.ListEntitlements(c.Request().Context(), f, httpx.Staff(c))
	if err != nil {
		return err
	}
	v := pages.StaffEntitlements{State: state}
	if len(list) > pageSize {
		list = list[:pageSize]
		q := url.Values{"before": {list[pageSize-1].ID}, "state": {c.QueryParam("state")}}
		v.NextURL = "/staff/entitlements?" + q.Encode()
	}
	v.List = list
	return httpx.Render(c, http.StatusOK, pages.StaffEntitlementList(s.page(c, "Entitlements"), v))
}

// newEntitlementForm builds the form for a template: only the overrides it allows.
func newEntitlementForm(customer, tmpl string) (pages.StaffNewEntitlement, *templates.Template) {
	v := pages.StaffNewEntitlement{CustomerID: customer, ChosenFeatures: map[string]bool{}, Limits: map[string]string{}, Errors: map[string]string{}}
	for _, t := range templates.All() {
		if t.Inherit {
			continue // credit packs are top-ups of a license, from its page
		}
		if lt, err := templates.Latest(t.Name); err == nil && lt.Version == t.Version {
			v.Templates = append(v.Templates, pages.StaffTemplateChoice{Name: t.Name, Product: t.Product, Summary: t.Summary})
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
	v.Template, v.AllowedFeatures, v.OverridableLimits, v.GraceOverridable = t.Name, t.AllowedFeatures, t.OverridableLimits, t.MaxGrace > 0
	return v, t
}

func (s *Handler) staffNewEntitlement(c echo.Context) error {
	v, _ := newEntitlementForm(strings.TrimSpace(c.QueryParam("customer")), c.QueryParam("template"))
	return httpx.Render(c, http.StatusOK, pages.StaffNewEntitlementForm(s.page(c, "New entitlement"), v))
}

// staffCreateEntitlement opens a draft; a validation error re-renders the form with
// the messages and the input kept.
func (s *Handler) staffCreateEntitlement(c echo.Context) error {
	v, t := newEntitlementForm(strings.TrimSpace(c.FormValue("customer")), c.FormValue("template"))
	if t == nil {
		return httpx.Render(c, http.StatusBadRequest, pages.StaffNewEntitlementForm(s.page(c, "New entitlement"), v))
	}
	form, _ := c.FormParams()
	in := decodeEntitlementForm(form, t, &v)
	if len(v.Errors) > 0 {
		return httpx.Render(c, http.StatusBadRequest, pages.StaffNewEntitlementForm(s.page(c, "New entitlement"), v))
	}
	e, err := s.Svc.CreateEntitlement(c.Request().Context(), in, httpx.Staff(c))
	var de *entitlements.Error
	if errors.As(err, &de) && (de.Code == entitlements.EINVALID || de.Code == entitlements.ENOTFOUND) {
		for k, m := range de.Fields {
			v.Errors[k] = m
		}
		if len(de.Fields) == 0 {
			v.Errors["form"] = de.Message
		}
		return httpx.Render(c, http.StatusBadRequest, pages.StaffNewEntitlementForm(s.page(c, "New entitlement"), v))
	}
	if err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/entitlements/"+e.ID, "Draft "+e.ID+" opened: another approver approves it next.")
}

func (s *Handler) staffEntitlement(c echo.Context) error {
	ctx := c.Request().Context()
	e, err := s.Svc.GetEntitlement(ctx, c.Param("id"), httpx.Staff(c))
	if err != nil {
		return err
	}
	by := httpx.Staff(c)
	ov, _ := json.Marshal(e.Overrides, json.Deterministic(true))
	v := pages.StaffEntitlementView{E: e, Overrides: string(ov),
		CanDecide: e.CanApprove(by, s.Svc.MakerChecker) == nil}
	if e.State == entitlements.StateIssued {
		if l, err := s.Svc.LicenseOfEntitlement(ctx, e.ID, httpx.Staff(c)); err == nil {
			v.LicenseID = l.ID
		}
	}
	return httpx.Render(c, http.StatusOK, pages.StaffEntitlementDetail(s.page(c, e.ID), v))
}

func (s *Handler) staffApprove(c echo.Context) error {
	e, err := s.Svc.Approve(c.Request().Context(), c.Param("id"), httpx.Staff(c))
	if err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/entitlements/"+e.ID, "Approved "+e.ID+": it can be issued now.")
}

func (s *Handler) staffReject(c echo.Context) error {
	e, err := s.Svc.Reject(c.Request().Context(), c.Param("id"), strings.TrimSpace(c.FormValue("reason")), httpx.Staff(c))
	if err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/entitlements/"+e.ID, "Rejected "+e.ID+".")
}

func (s *Handler) staffCancel(c echo.Context) error {
	e, err := s.Svc.Cancel(c.Request().Context(), c.Param("id"), strings.TrimSpace(c.FormValue("reason")), httpx.Staff(c))
	if err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/entitlements/"+e.ID, "Cancelled "+e.ID+".")
}

// staffIssue issues the license; a lease-required license's token is shown once here.
func (s *Handler) staffIssue(c echo.Context) error {
	l, tok, err := s.Svc.IssueWithToken(c.Request().Context(), c.Param("id"), httpx.Staff(c))
	if err != nil {
		return err
	}
	if tok != "" {
		return s.showSecret(c, httpx.SecretView{Title: "Issued " + l.ID + ": its lease token",
			Explain: "The customer's hosts renew their online lease with this token (also rotatable later from the license page or the portal).",
			Secret:  tok, Back: "/staff/licenses/" + l.ID, Again: "Rotate the lease token on the license's page to get a new one (the old one stops working)."})
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/licenses/"+l.ID, "Issued "+l.ID+" ("+l.SKU+" for "+l.CustomerName+").")
}
