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

// customerPageRows is how many licenses and entitlements a customer's page shows; the
// license and entitlement lists, filtered to the customer, page the rest.
const customerPageRows = 20

func (s *Handler) staffCustomers(c echo.Context) error {
	return s.renderCustomers(c, http.StatusOK, pages.StaffCustomers{})
}

// renderCustomers is the customer list: a search (name, email, contract reference,
// a customer, license or entitlement ID), sortable columns, keyset pages, and the
// add form (v carries a refused form's input and messages).
func (s *Handler) renderCustomers(c echo.Context, status int, v pages.StaffCustomers) error {
	v.Query = strings.TrimSpace(c.QueryParam("q"))
	if v.Errors == nil {
		v.Errors = map[string]string{}
	}
	v.Nav = ui.ListNav{Path: "/staff/customers", Filters: url.Values{"q": {v.Query}}}
	sort, err := entitlements.ParseSort(c.QueryParam("sort"), entitlements.CustomerSorts, entitlements.Sort{Key: "name"})
	fieldErrors(err, v.Errors)
	v.Nav.Sort = sort.Param()
	q := entitlements.CustomerQuery{Text: v.Query, Sort: sort, After: c.QueryParam("after"), Limit: pageSize + 1}
	if q.After != "" && !entitlements.ValidID(entitlements.PrefixCustomer, q.After) {
		v.Errors["after"], q.After = "not a page cursor: showing the first page", ""
	}
	list, err := s.Svc.SearchCustomers(c.Request().Context(), q, httpx.Staff(c))
	if err != nil {
		return err
	}
	v.Customers, v.Page = ui.PageOf(list, pageSize, v.Nav, q.After, func(c *entitlements.Customer) string { return c.ID })
	if status == http.StatusOK && (v.Errors["sort"] != "" || v.Errors["after"] != "") {
		status = http.StatusUnprocessableEntity
	}
	return httpx.Render(c, status, pages.StaffCustomerList(s.page(c, "Customers"), v))
}

// staffCreateCustomer adds a customer; a validation error re-renders the form with
// the messages beside the fields and the input kept.
func (s *Handler) staffCreateCustomer(c echo.Context) error {
	cu := &entitlements.Customer{Name: c.FormValue("name"), Email: c.FormValue("email")}
	err := s.Svc.CreateCustomer(c.Request().Context(), cu, httpx.Staff(c))
	var de *entitlements.Error
	if errors.As(err, &de) && de.Code == entitlements.EINVALID {
		return s.renderCustomers(c, http.StatusUnprocessableEntity, pages.StaffCustomers{Name: cu.Name, Email: cu.Email, Errors: de.Fields})
	}
	if err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/customers/"+cu.ID, "Customer "+cu.Name+" added ("+cu.ID+"). Next: open an entitlement for it.")
}

func (s *Handler) staffCustomer(c echo.Context) error {
	return s.renderCustomer(c, http.StatusOK, "", "")
}

// staffUpdateCustomer corrects a customer's name or email.
func (s *Handler) staffUpdateCustomer(c echo.Context) error {
	ctx := c.Request().Context()
	cu, err := s.Svc.GetCustomer(ctx, c.Param("id"), httpx.Staff(c))
	if err != nil {
		return err
	}
	cu.Name, cu.Email = c.FormValue("name"), c.FormValue("email")
	err = s.Svc.UpdateCustomer(ctx, cu, httpx.Staff(c))
	var de *entitlements.Error
	if errors.As(err, &de) && de.Code == entitlements.EINVALID {
		c.Set("edit_errors", de.Fields)
		c.Set("edit_input", cu)
		return s.renderCustomer(c, http.StatusUnprocessableEntity, "", "")
	}
	if err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/customers/"+cu.ID, "Saved. Issued licenses keep the name they were signed with: replace them to deliver the correction.")
}

func (s *Handler) renderCustomer(c echo.Context, status int, inviteErr, tokenErr string) error {
	ctx := c.Request().Context()
	cu, err := s.Svc.GetCustomer(ctx, c.Param("id"), httpx.Staff(c))
	if err != nil {
		return err
	}
	v := pages.StaffCustomer{Customer: cu, Edit: *cu, Portal: s.Portal != nil, InviteError: inviteErr, TokenError: tokenErr}
	v.EditErrors, _ = c.Get("edit_errors").(map[string]string)
	if in, ok := c.Get("edit_input").(*entitlements.Customer); ok {
		v.Edit = *in // the refused input, kept
	}
	if e, ok := c.Get("invite_input").([2]string); ok {
		v.InviteEmail, v.InviteName = e[0], e[1]
	}
	// The customer's page shows the newest of each; the lists page the rest.
	licenses, err := s.Svc.ListLicenses(ctx, entitlements.LicenseFilter{CustomerID: cu.ID, Limit: customerPageRows + 1}, httpx.Staff(c))
	if err != nil {
		return err
	}
	now := s.now()
	for i, l := range licenses {
		if i == customerPageRows {
			v.MoreLicenses = true
			break
		}
		st := l.StateAt(now)
		v.Licenses = append(v.Licenses, pages.LicenseListRow{ID: l.ID, CustomerID: l.CustomerID, CustomerName: l.CustomerName, ContractRef: l.ContractRef,
			SKU: l.SKU, Version: ui.Itoa(l.TemplateVersion), Status: st.Status, StatusLabel: st.Label(), IssuedAt: ui.Date(l.IssuedAt),
			ExpiresAt: ui.Date(l.ExpiresAt), FileName: l.FileName})
	}
	if v.Entitlements, err = s.Svc.ListEntitlements(ctx, entitlements.EntitlementFilter{CustomerID: cu.ID, Limit: customerPageRows + 1}, httpx.Staff(c)); err != nil {
		return err
	}
	if len(v.Entitlements) > customerPageRows {
		v.Entitlements, v.MoreEntitlements = v.Entitlements[:customerPageRows], true
	}
	if v.Portal {
		if v.PortalUsers, err = s.Svc.ListPortalUsers(ctx, cu.ID, httpx.Staff(c)); err != nil {
			return err
		}
		if v.Tokens, err = s.Svc.ListCustomerTokens(ctx, cu.ID, httpx.Staff(c)); err != nil {
			return err
		}
	}
	return httpx.Render(c, status, pages.StaffCustomerDetail(s.page(c, cu.Name), v))
}

// staffInvite invites a portal user for the customer; the mail carries the link.
func (s *Handler) staffInvite(c echo.Context) error {
	if s.Portal == nil {
		return entitlements.NotFound("page", c.Request().URL.Path)
	}
	id := c.Param("id")
	u, err := s.Portal.Invite(c.Request().Context(), id, c.FormValue("email"), c.FormValue("name"), httpx.Staff(c))
	var de *entitlements.Error
	if u == nil && errors.As(err, &de) && (de.Code == entitlements.EINVALID || de.Code == entitlements.ECONFLICT) {
		msg, status := de.Message, http.StatusUnprocessableEntity
		if de.Code == entitlements.ECONFLICT {
			status = http.StatusConflict
		}
		if de.Fields["email"] != "" {
			msg = "Email: " + de.Fields["email"]
		}
		c.Set("invite_input", [2]string{c.FormValue("email"), c.FormValue("name")})
		return s.renderCustomer(c, status, msg, "")
	}
	if u == nil && err != nil {
		return err
	}
	msg := "Invited " + u.Email + ": a one-time sign-in link is on its way."
	if err != nil {
		msg = "Added " + u.Email + ", but the sign-in link was not sent (" + entitlements.ErrorMessage(err) + "): they can ask for one on the portal's sign-in page."
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/customers/"+id, msg)
}

// staffCustomerToken makes a customer API token on the customer's behalf, shown once.
func (s *Handler) staffCustomerToken(c echo.Context) error {
	if s.Portal == nil {
		return entitlements.NotFound("page", c.Request().URL.Path)
	}
	id := c.Param("id")
	tok, rec, err := s.Portal.StaffCreateToken(c.Request().Context(), id, strings.TrimSpace(c.FormValue("name")), 0, httpx.Staff(c))
	var de *entitlements.Error
	if errors.As(err, &de) && de.Code == entitlements.EINVALID {
		return s.renderCustomer(c, http.StatusBadRequest, "", "Name: "+de.Fields["name"])
	}
	if err != nil {
		return err
	}
	return s.showSecret(c, httpx.SecretView{Title: "Customer API token " + rec.Name + " (" + rec.ID + ")",
		Explain: "Give it to the customer over a safe channel: their scripts send it as a Bearer token to read their license files. They can revoke it in the portal.",
		Secret:  tok, Back: "/staff/customers/" + id, Again: "Make another token on the customer's page (and revoke " + rec.ID + " if it was lost)."})
}
