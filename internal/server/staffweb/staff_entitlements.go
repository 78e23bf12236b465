package staffweb

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/staff"
	"github.com/metrum/licensing/web/ui"
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

// staffEntitlements is the approval queue and the lists by state: a search (customer
// name, contract reference, IDs), sortable columns and keyset pages.
func (s *Handler) staffEntitlements(c echo.Context) error {
	v := pages.StaffEntitlements{Tab: c.QueryParam("state"), Query: strings.TrimSpace(c.QueryParam("q")),
		CustomerID: strings.TrimSpace(c.QueryParam("customer")), Errors: map[string]string{}}
	switch v.Tab {
	case "":
		v.Tab, v.State = entitlements.StateDraft, entitlements.StateDraft
	case "all":
	default:
		v.State = v.Tab
	}
	v.Nav = ui.ListNav{Path: "/staff/entitlements", Filters: url.Values{"state": {v.Tab}, "q": {v.Query}, "customer": {v.CustomerID}}}
	sort, err := entitlements.ParseSort(c.QueryParam("sort"), entitlements.EntitlementSorts, entitlements.Sort{Key: "created", Desc: true})
	fieldErrors(err, v.Errors)
	v.Nav.Sort = sort.Param()
	f := entitlements.EntitlementFilter{State: v.State, CustomerID: v.CustomerID, Text: v.Query, Sort: sort, After: c.QueryParam("after"), Limit: pageSize + 1}
	if f.After != "" && !entitlements.ValidID(entitlements.PrefixEntitlement, f.After) {
		v.Errors["after"] = "not a page cursor: showing the first page"
		f.After = ""
	}
	list, err := s.Svc.ListEntitlements(c.Request().Context(), f, httpx.Staff(c))
	if err != nil {
		return err
	}
	v.List, v.Page = ui.PageOf(list, pageSize, v.Nav, f.After, func(e *entitlements.Entitlement) string { return e.ID })
	status := http.StatusOK
	if len(v.Errors) > 0 {
		status = http.StatusUnprocessableEntity
	}
	return httpx.Render(c, status, pages.StaffEntitlementList(s.page(c, "Entitlements"), v))
}

func (s *Handler) staffEntitlement(c echo.Context) error {
	return s.renderEntitlement(c, http.StatusOK, pages.StaffEntitlementView{})
}

// renderEntitlement shows an entitlement's page: for a draft the decision page, with
// the preview of the license it issues. v carries what a refused form needs shown
// again.
func (s *Handler) renderEntitlement(c echo.Context, status int, v pages.StaffEntitlementView) error {
	ctx, by := c.Request().Context(), httpx.Staff(c)
	p, err := s.Svc.PreviewEntitlement(ctx, c.Param("id"), by)
	if err != nil {
		return err
	}
	e := p.Entitlement
	v.E, v.Preview, v.CanDecide = e, previewView(p, s.now()), e.CanApprove(by, s.Svc.MakerChecker) == nil
	if v.Errors == nil {
		v.Errors = map[string]string{}
	}
	if e.State == entitlements.StateIssued {
		if l, err := s.Svc.LicenseOfEntitlement(ctx, e.ID, by); err == nil {
			v.LicenseID = l.ID
		}
	}
	return httpx.Render(c, status, pages.StaffEntitlementDetail(s.page(c, e.ID), v))
}

// decisionRefused shows the entitlement's page again with a refusal beside the form
// it came from (field: "reject", "cancel" or "action"), and true; false for errors
// that are not a refusal of the input or the state (the error page).
func (s *Handler) decisionRefused(c echo.Context, err error, field string, v pages.StaffEntitlementView) (bool, error) {
	var de *entitlements.Error
	if !errors.As(err, &de) || (de.Code != entitlements.EINVALID && de.Code != entitlements.ECONFLICT) {
		return false, err
	}
	v.Errors = map[string]string{field: de.Message}
	if m := de.Fields["reason"]; m != "" {
		v.Errors[field] = m
	}
	status := http.StatusUnprocessableEntity
	if de.Code == entitlements.ECONFLICT {
		status = http.StatusConflict
		if field != "action" {
			v.Errors = map[string]string{"action": de.Message}
		}
		if de.Conflict != "" {
			v.ConflictURL, v.ConflictText = linkOf(de.Conflict)
		}
	}
	return true, s.renderEntitlement(c, status, v)
}

// linkOf is the console page of an ID and its link text.
func linkOf(id string) (string, string) {
	switch {
	case strings.HasPrefix(id, entitlements.PrefixEntitlement):
		return "/staff/entitlements/" + id, "Open " + id
	case strings.HasPrefix(id, entitlements.PrefixLicense):
		return "/staff/licenses/" + id, "Open " + id
	}
	return "", ""
}

func (s *Handler) staffApprove(c echo.Context) error {
	e, err := s.Svc.Approve(c.Request().Context(), c.Param("id"), httpx.Staff(c))
	if ok, err := s.decisionRefused(c, err, "action", pages.StaffEntitlementView{}); ok || err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/entitlements/"+e.ID, "Approved "+e.ID+" for "+e.CustomerName+": it can be issued now.")
}

func (s *Handler) staffReject(c echo.Context) error {
	reason := strings.TrimSpace(c.FormValue("reason"))
	e, err := s.Svc.Reject(c.Request().Context(), c.Param("id"), reason, httpx.Staff(c))
	if ok, err := s.decisionRefused(c, err, "reject", pages.StaffEntitlementView{RejectReason: reason}); ok || err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/entitlements/"+e.ID, "Rejected "+e.ID+".")
}

func (s *Handler) staffCancel(c echo.Context) error {
	reason := strings.TrimSpace(c.FormValue("reason"))
	e, err := s.Svc.Cancel(c.Request().Context(), c.Param("id"), reason, httpx.Staff(c))
	if ok, err := s.decisionRefused(c, err, "cancel", pages.StaffEntitlementView{CancelReason: reason}); ok || err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/entitlements/"+e.ID, "Cancelled "+e.ID+".")
}

// staffIssue issues the license; a lease-required license's token is shown once here.
func (s *Handler) staffIssue(c echo.Context) error {
	l, tok, err := s.Svc.IssueWithToken(c.Request().Context(), c.Param("id"), httpx.Staff(c))
	if ok, err := s.decisionRefused(c, err, "action", pages.StaffEntitlementView{}); ok || err != nil {
		return err
	}
	if tok != "" {
		return s.showSecret(c, httpx.SecretView{Title: "Issued " + l.ID + ": its lease token",
			Explain: "The customer's hosts renew their online lease with this token (also rotatable later from the license page or the portal).",
			Secret:  tok, Back: "/staff/licenses/" + l.ID, Again: "Rotate the lease token on the license's page to get a new one (the old one stops working)."})
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/licenses/"+l.ID, "Issued "+l.ID+" ("+l.SKU+" for "+l.CustomerName+").")
}
